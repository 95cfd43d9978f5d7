//! Reading the documents named by `apply -f` / `diff -f`.
//!
//! A path is a file, a directory (every `*.yaml`, `*.yml` and `*.json` directly in
//! it, in name order, not recursing) or `-` for stdin. Each input is parsed here,
//! with the same parser the server uses ([`api_types::parse_documents`]), so a
//! syntax error names its file, JSON files and JSON lists mix freely with YAML, and
//! a `422` naming `items[3]` can be traced back to the file it came from. The
//! documents are then sent as one YAML stream.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use api_types::ParseError;
use serde_json::Value;

/// The `-f` argument that means stdin.
const STDIN: &str = "-";

/// File name endings read from a directory.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// The documents of every input, in order, each with where it came from.
#[derive(Debug, Default)]
pub struct Documents {
    /// One JSON value per document.
    pub docs: Vec<Value>,
    /// `docs[i]` came from `sources[i]` (`relays/gw.yaml` or `relays/gw.yaml#2`).
    pub sources: Vec<String>,
    /// `docs[i]` is document `origins[i].1` (from 1) of file `origins[i].0`.
    pub origins: Vec<(String, usize)>,
}

impl Documents {
    /// The documents as one YAML stream (`---` before each), the body of `/v1/apply`.
    pub fn to_yaml_stream(&self) -> anyhow::Result<String> {
        let mut out = String::new();
        for (doc, source) in self.docs.iter().zip(&self.sources) {
            out.push_str("---\n");
            out.push_str(&serde_norway::to_string(doc).with_context(|| format!("re-encoding {source}"))?);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// The documents at `indices`, in that order, with where they came from.
    pub fn select(&self, indices: &[usize]) -> Documents {
        let mut out = Documents::default();
        for &i in indices {
            if let (Some(doc), Some(source)) = (self.docs.get(i), self.sources.get(i)) {
                out.docs.push(doc.clone());
                out.sources.push(source.clone());
                out.origins.push(self.origins.get(i).cloned().unwrap_or_else(|| (source.clone(), 1)));
            }
        }
        out
    }

    /// Where `items[index]` of the request came from.
    pub fn source_of(&self, index: usize) -> Option<&str> {
        self.sources.get(index).map(String::as_str)
    }
}

/// Reads every input in order; `-` reads `stdin` (at most once).
pub fn read_inputs(paths: &[PathBuf], stdin: impl Read) -> anyhow::Result<Documents> {
    let mut stdin = Some(stdin);
    let mut out = Documents::default();
    for path in paths {
        if path.as_os_str() == STDIN {
            let Some(mut input) = stdin.take() else { bail!("`-f -` (stdin) can be given only once") };
            let mut text = String::new();
            input.read_to_string(&mut text).context("reading documents from stdin")?;
            add_text(&mut out, "<stdin>", &text)?;
        } else if path.is_dir() {
            for file in document_files(path)? {
                add_file(&mut out, &file)?;
            }
        } else {
            add_file(&mut out, path)?;
        }
    }
    if out.docs.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        bail!("no documents found in {}", names.join(", "));
    }
    Ok(out)
}

/// The document files directly in `dir`, sorted by name.
pub fn document_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading directory {}", dir.display()))?;
        let path = entry.path();
        if path.is_file() && is_document_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn is_document_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|known| e.eq_ignore_ascii_case(known)))
}

fn add_file(out: &mut Documents, path: &Path) -> anyhow::Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    add_text(out, &path.display().to_string(), &text)
}

/// Parses one input; an empty one (only comments or `---`) adds nothing.
fn add_text(out: &mut Documents, source: &str, text: &str) -> anyhow::Result<()> {
    let docs = match api_types::parse_documents(text) {
        Ok(docs) => docs,
        Err(ParseError::Empty) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {source}")),
    };
    let many = docs.len() > 1;
    for (i, doc) in docs.into_iter().enumerate() {
        out.sources.push(if many { format!("{source}#{}", i + 1) } else { source.to_string() });
        out.origins.push((source.to_string(), i + 1));
        out.docs.push(doc);
    }
    Ok(())
}

/// Every document under `dir`, recursing, in path order: the `*.yaml`, `*.yml`
/// and `*.json` files, and each chart (a directory with a `Chart.yaml`)
/// rendered with its default values instead of read. Hidden entries (`.git`,
/// `.github`) are skipped. What `mooring sync` reads.
pub fn read_tree(dir: &Path) -> anyhow::Result<Documents> {
    let mut out = Documents::default();
    walk(dir, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, out: &mut Documents) -> anyhow::Result<()> {
    if dir.join(crate::cli::chart::CHART_FILE).is_file() {
        let chart = crate::cli::chart::Chart::load(dir)?;
        for rendered in chart.render(&crate::cli::chart::Overrides::default())? {
            add_text(out, &rendered.source, &rendered.text)?;
        }
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading directory {}", dir.display()))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() && is_document_file(&path) {
            add_file(out, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            let dir = std::env::temp_dir().join(format!("mooring-cli-{tag}-{}-{nanos}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn write(&self, name: &str, text: &str) {
            fs::write(self.0.join(name), text).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn names(d: &Documents) -> Vec<&str> {
        d.docs.iter().map(|v| v["metadata"]["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn reads_a_directory_in_name_order_without_recursing() {
        let dir = TempDir::new("dir");
        dir.write("b.yaml", "kind: Relay\nmetadata: {name: b1}\n---\nkind: Relay\nmetadata: {name: b2}\n");
        dir.write(
            "a.json",
            r#"[{"kind": "Node", "metadata": {"name": "a1"}}, {"kind": "Node", "metadata": {"name": "a2"}}]"#,
        );
        dir.write("c.YML", "---\nkind: Worker\nmetadata:\n  name: c\n");
        dir.write("empty.yaml", "# nothing here\n");
        dir.write("notes.txt", "kind: Relay\nmetadata: {name: ignored}\n");
        fs::create_dir(dir.0.join("sub")).unwrap();
        dir.write("sub/d.yaml", "kind: Relay\nmetadata: {name: nested}\n");

        let d = read_inputs(std::slice::from_ref(&dir.0), std::io::empty()).unwrap();
        assert_eq!(names(&d), vec!["a1", "a2", "b1", "b2", "c"]);
        assert_eq!(d.origins[1], (dir.0.join("a.json").display().to_string(), 2));

        // A tree: recursing, hidden entries skipped.
        fs::create_dir(dir.0.join(".git")).unwrap();
        dir.write(".git/x.yaml", "kind: Relay\nmetadata: {name: hidden}\n");
        let d = read_tree(&dir.0).unwrap();
        assert_eq!(names(&d), vec!["a1", "a2", "b1", "b2", "c", "nested"]);
        let a = dir.0.join("a.json").display().to_string();
        assert_eq!(d.source_of(1), Some(format!("{a}#2").as_str()));
        let c = dir.0.join("c.YML").display().to_string();
        assert_eq!(d.source_of(4), Some(c.as_str()));

        // One YAML stream the server's parser reads back to the same documents.
        let stream = d.to_yaml_stream().unwrap();
        assert!(stream.starts_with("---\n"));
        assert_eq!(api_types::parse_documents(&stream).unwrap(), d.docs);
    }

    #[test]
    fn files_and_stdin_keep_argument_order() {
        let dir = TempDir::new("args");
        dir.write("one.yaml", "kind: Relay\nmetadata: {name: one}\n");
        let stdin = "kind: Worker\nmetadata: {name: piped}\n".as_bytes();
        let d = read_inputs(&[PathBuf::from("-"), dir.0.join("one.yaml")], stdin).unwrap();
        assert_eq!(names(&d), vec!["piped", "one"]);
        assert_eq!(d.source_of(0), Some("<stdin>"));
        assert!(read_inputs(&[PathBuf::from("-"), PathBuf::from("-")], "".as_bytes()).is_err());
    }

    #[test]
    fn errors_name_the_input() {
        let dir = TempDir::new("errors");
        dir.write("bad.yaml", "kind: Relay\nmetadata: [unclosed\n");
        let err = read_inputs(&[dir.0.join("bad.yaml")], std::io::empty()).unwrap_err();
        assert!(format!("{err:#}").contains("bad.yaml"), "{err:#}");

        let err = read_inputs(&[dir.0.join("missing.yaml")], std::io::empty()).unwrap_err();
        assert!(format!("{err:#}").contains("missing.yaml"), "{err:#}");

        let empty = TempDir::new("empty");
        let err = read_inputs(std::slice::from_ref(&empty.0), std::io::empty()).unwrap_err();
        assert!(err.to_string().starts_with("no documents found in "), "{err}");
    }
}
