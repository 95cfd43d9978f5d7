//! Charts: a directory of minijinja templates and default values that renders to
//! Mooring documents, the way a new user starts from a working example.
//!
//! ```text
//! charts/pulse-node/
//!   Chart.yaml            name, version, description
//!   values.yaml           the defaults
//!   values.schema.json    optional: a JSON Schema the merged values must satisfy
//!   templates/*.yaml      rendered in name order; `_*.yaml` are only for include/import
//!   README.md
//! ```
//!
//! Templates see `values` (the defaults, merged with `-f` files and `--set`
//! overrides) and `chart` (`name`, `version`). Values are inserted as written
//! (no escaping, as in Helm); `{{ value | tojson }}` inserts a quoted string, a
//! list or a mapping as JSON, which is valid YAML. An undefined value is an error, not
//! an empty string, so a typo fails the render instead of shipping a blank field.
//! `mooring chart render` prints the documents; `mooring chart lint` renders
//! them and validates every document as the API would. `mooring sync` renders
//! every chart directory it meets with its defaults.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::output;

/// The file that makes a directory a chart.
pub const CHART_FILE: &str = "Chart.yaml";
/// The chart's default values.
const VALUES_FILE: &str = "values.yaml";
/// The optional JSON Schema of the values.
const SCHEMA_FILE: &str = "values.schema.json";
/// Where the templates live.
const TEMPLATES_DIR: &str = "templates";

/// `mooring chart …`
#[derive(Subcommand, Debug, Clone)]
pub enum ChartCommand {
    /// Render a chart's documents to stdout (a YAML stream).
    Render(RenderArgs),
    /// Render a chart and validate every document as the API would (exit 1 on any error).
    Lint(RenderArgs),
}

/// Arguments of `chart render` and `chart lint`.
#[derive(Args, Debug, Clone)]
pub struct RenderArgs {
    /// The chart directory (holding Chart.yaml).
    pub dir: PathBuf,
    /// Values files merged over the defaults, in order.
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// One value over everything else: `key.path=value` (the value read as YAML: 3, true, text).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Why a chart did not render.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// A chart file is missing or unreadable.
    #[error("chart {chart}: cannot read {path}: {source}")]
    Read { chart: String, path: PathBuf, source: std::io::Error },
    /// Chart.yaml, values or the schema do not parse.
    #[error("chart {chart}: {path}: {message}")]
    Parse { chart: String, path: PathBuf, message: String },
    /// The merged values break values.schema.json.
    #[error("chart {chart}: the values do not match {SCHEMA_FILE}:\n  {}", .errors.join("\n  "))]
    Values { chart: String, errors: Vec<String> },
    /// A `--set` is not `key=value`.
    #[error("--set {0:?}: expected key.path=value")]
    BadSet(String),
    /// A template does not compile or render.
    #[error("chart {chart}: {template}: {message}")]
    Template { chart: String, template: String, message: String },
}

/// Chart.yaml.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChartMeta {
    /// The chart's name.
    pub name: String,
    /// The chart's version (semver, by convention).
    pub version: String,
    /// What it deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Values given on the command line, applied over the defaults in order.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Whole values documents (`-f`).
    pub files: Vec<Value>,
    /// Single values (`--set a.b=c`): the key path and the value.
    pub sets: Vec<(Vec<String>, Value)>,
}

impl Overrides {
    /// Reads `-f` files and parses `--set` arguments.
    pub fn from_args(files: &[PathBuf], sets: &[String]) -> Result<Overrides, ChartError> {
        let mut out = Overrides::default();
        for path in files {
            let text = fs::read_to_string(path).map_err(|source| ChartError::Read {
                chart: "-".into(),
                path: path.clone(),
                source,
            })?;
            out.files.push(parse_yaml(&text).map_err(|message| ChartError::Parse {
                chart: "-".into(),
                path: path.clone(),
                message,
            })?);
        }
        for set in sets {
            out.sets.push(parse_set(set)?);
        }
        Ok(out)
    }
}

/// One rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `charts/pulse-node/templates/node.yaml`.
    pub source: String,
    /// The YAML it rendered to.
    pub text: String,
}

/// A chart read from disk.
#[derive(Debug, Clone)]
pub struct Chart {
    dir: PathBuf,
    /// Chart.yaml.
    pub meta: ChartMeta,
    defaults: Value,
    schema: Option<Value>,
    /// (file name, text), in name order.
    templates: Vec<(String, String)>,
}

impl Chart {
    /// Reads Chart.yaml, values.yaml, values.schema.json (if any) and the templates.
    pub fn load(dir: &Path) -> Result<Chart, ChartError> {
        let label = dir.display().to_string();
        let read = |path: PathBuf| {
            fs::read_to_string(&path).map_err(|source| ChartError::Read { chart: label.clone(), path, source })
        };
        let parse_err = |path: &Path, message: String| ChartError::Parse {
            chart: label.clone(),
            path: path.to_path_buf(),
            message,
        };
        let chart_path = dir.join(CHART_FILE);
        let meta_value = parse_yaml(&read(chart_path.clone())?).map_err(|m| parse_err(&chart_path, m))?;
        let meta: ChartMeta = serde_json::from_value(meta_value).map_err(|e| parse_err(&chart_path, e.to_string()))?;
        let values_path = dir.join(VALUES_FILE);
        let defaults = if values_path.is_file() {
            parse_yaml(&read(values_path.clone())?).map_err(|m| parse_err(&values_path, m))?
        } else {
            Value::Object(Map::new())
        };
        let schema_path = dir.join(SCHEMA_FILE);
        let schema = if schema_path.is_file() {
            let text = read(schema_path.clone())?;
            Some(serde_json::from_str(&text).map_err(|e| parse_err(&schema_path, e.to_string()))?)
        } else {
            None
        };
        let templates_dir = dir.join(TEMPLATES_DIR);
        let entries = fs::read_dir(&templates_dir).map_err(|source| ChartError::Read {
            chart: label.clone(),
            path: templates_dir.clone(),
            source,
        })?;
        let mut templates = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| ChartError::Read { chart: label.clone(), path: templates_dir.clone(), source })?
                .path();
            let is_template = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if path.is_file() && is_template {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                templates.push((name, read(path)?));
            }
        }
        templates.sort();
        Ok(Chart { dir: dir.to_path_buf(), meta, defaults, schema, templates })
    }

    /// The defaults with `overrides` merged over them, checked against the schema.
    pub fn values(&self, overrides: &Overrides) -> Result<Value, ChartError> {
        let mut values = self.defaults.clone();
        for file in &overrides.files {
            merge(&mut values, file.clone());
        }
        for (path, value) in &overrides.sets {
            set_path(&mut values, path, value.clone());
        }
        if let Some(schema) = &self.schema {
            let validator = jsonschema::validator_for(schema).map_err(|e| ChartError::Parse {
                chart: self.label(),
                path: self.dir.join(SCHEMA_FILE),
                message: e.to_string(),
            })?;
            let errors: Vec<String> = validator
                .iter_errors(&values)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    let at =
                        if at.is_empty() { "values".to_string() } else { format!("values{}", at.replace('/', ".")) };
                    format!("{at}: {e}")
                })
                .collect();
            if !errors.is_empty() {
                return Err(ChartError::Values { chart: self.label(), errors });
            }
        }
        Ok(values)
    }

    /// Renders every template (except `_*` partials) with the merged values.
    pub fn render(&self, overrides: &Overrides) -> Result<Vec<Rendered>, ChartError> {
        let values = self.values(overrides)?;
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // As in Helm, text goes in as written; `| tojson` quotes a value that
        // needs it (minijinja would otherwise JSON-escape every value of a .yaml file).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        for (name, text) in &self.templates {
            env.add_template(name, text).map_err(|e| self.template_error(name, &e))?;
        }
        let context = minijinja::context! { values => values, chart => &self.meta };
        let mut out = Vec::new();
        for (name, _) in self.templates.iter().filter(|(n, _)| !n.starts_with('_')) {
            let template = env.get_template(name).map_err(|e| self.template_error(name, &e))?;
            let text = template.render(&context).map_err(|e| self.template_error(name, &e))?;
            let source = self.dir.join(TEMPLATES_DIR).join(name).display().to_string();
            out.push(Rendered { source, text });
        }
        Ok(out)
    }

    fn label(&self) -> String {
        self.meta.name.clone()
    }

    fn template_error(&self, template: &str, e: &minijinja::Error) -> ChartError {
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            let _ = write!(message, ": {c}");
            cause = c.source();
        }
        ChartError::Template { chart: self.label(), template: format!("{TEMPLATES_DIR}/{template}"), message }
    }
}

/// The rendered templates as one YAML stream, each headed by its source, the
/// way `chart render` prints them (and the golden files pin them).
pub fn to_stream(rendered: &[Rendered]) -> String {
    let mut out = String::new();
    for r in rendered {
        let body = r.text.trim();
        if body.is_empty() {
            continue;
        }
        let _ = writeln!(out, "---\n# Source: {}", r.source);
        let body = body.strip_prefix("---").map(str::trim_start).unwrap_or(body);
        let _ = writeln!(out, "{body}");
    }
    out
}

/// Every problem `chart lint` finds in rendered templates: documents that do not
/// parse or that the API would refuse, named by template, document and field.
pub fn lint(rendered: &[Rendered]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for r in rendered {
        let docs = match api_types::parse_documents(&r.text) {
            Ok(docs) => docs,
            Err(api_types::ParseError::Empty) => continue,
            Err(e) => {
                problems.push(format!("{}: {e}", r.source));
                continue;
            }
        };
        for (i, doc) in docs.into_iter().enumerate() {
            let at = format!("{} document {}", r.source, i + 1);
            match api_types::validate_document(doc) {
                Ok(res) => {
                    let m = res.metadata();
                    let key = (res.kind(), m.namespace.clone(), m.name.clone());
                    if let Some(first) = seen.insert(key, at.clone()) {
                        problems.push(format!("{at}: {} {}/{} is also {first}", res.kind(), m.namespace, m.name));
                    }
                }
                Err(errors) => problems.extend(errors.0.iter().map(|e| format!("{at}: {e}"))),
            }
        }
    }
    problems
}

/// Runs `chart render` / `chart lint`.
pub fn run(cmd: ChartCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ChartCommand::Render(args) => {
            let rendered = render_args(&args)?;
            output::print(&to_stream(&rendered))?;
            Ok(ExitCode::SUCCESS)
        }
        ChartCommand::Lint(args) => {
            let rendered = render_args(&args)?;
            let problems = lint(&rendered);
            if !problems.is_empty() {
                anyhow::bail!("chart {} is not valid:\n  {}", args.dir.display(), problems.join("\n  "));
            }
            let count: usize =
                rendered.iter().map(|r| api_types::parse_documents(&r.text).map(|d| d.len()).unwrap_or(0)).sum();
            output::print(&format!("chart {}: {count} documents, all valid\n", args.dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn render_args(args: &RenderArgs) -> anyhow::Result<Vec<Rendered>> {
    let chart = Chart::load(&args.dir)?;
    let overrides = Overrides::from_args(&args.values, &args.set)?;
    chart.render(&overrides).with_context(|| format!("rendering {}", args.dir.display()))
}

/// A YAML (or JSON) mapping; an empty file is an empty mapping.
fn parse_yaml(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let v: Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    match v {
        Value::Null => Ok(Value::Object(Map::new())),
        v @ Value::Object(_) => Ok(v),
        _ => Err("expected a mapping".into()),
    }
}

/// `a.b.c=value` → (["a", "b", "c"], value read as YAML).
fn parse_set(arg: &str) -> Result<(Vec<String>, Value), ChartError> {
    let bad = || ChartError::BadSet(arg.to_string());
    let (key, raw) = arg.split_once('=').ok_or_else(bad)?;
    let path: Vec<String> = key.split('.').map(str::to_string).collect();
    if path.iter().any(String::is_empty) {
        return Err(bad());
    }
    let value = if raw.is_empty() {
        Value::String(String::new())
    } else {
        serde_norway::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
    };
    Ok((path, value))
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Sets one value by key path, creating mappings on the way.
fn set_path(values: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cur = values;
    for key in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        cur = map.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Value::Object(map) = cur {
        map.insert(last.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_arguments_table() {
        let cases = [
            ("replicas=3", (vec!["replicas"], json!(3))),
            ("image.tag=v1.2", (vec!["image", "tag"], json!("v1.2"))),
            ("debug=true", (vec!["debug"], json!(true))),
            ("name=", (vec!["name"], json!(""))),
            ("port=08080", (vec!["port"], json!("08080"))),
        ];
        for (arg, (path, value)) in cases {
            let (p, v) = parse_set(arg).unwrap();
            assert_eq!((p.iter().map(String::as_str).collect::<Vec<_>>(), v), (path, value), "{arg}");
        }
        for bad in ["novalue", "=x", "a..b=1", ".a=1"] {
            assert!(parse_set(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merging_and_setting() {
        let mut v = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        merge(&mut v, json!({"a": {"c": [3]}, "e": true}));
        assert_eq!(v, json!({"a": {"b": 1, "c": [3]}, "d": "x", "e": true}));
        set_path(&mut v, &["a".into(), "b".into()], json!(5));
        set_path(&mut v, &["d".into(), "new".into()], json!("y"));
        set_path(&mut v, &["f".into(), "g".into()], json!(null));
        assert_eq!(v, json!({"a": {"b": 5, "c": [3]}, "d": {"new": "y"}, "e": true, "f": {"g": null}}));
    }

    /// Every chart in `charts/` renders with its defaults to exactly its golden
    /// file (`charts/NAME/golden.yaml`) and passes lint. With
    /// `MOORING_UPDATE_GOLDEN=1` the golden files are rewritten instead.
    #[test]
    fn charts_render_to_their_golden_files_and_lint_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts");
        let mut dirs: Vec<PathBuf> =
            fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join(CHART_FILE).is_file()).collect();
        dirs.sort();
        let names: Vec<String> = dirs.iter().map(|d| d.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["integration-platform", "proton-beam", "pulse-node", "relay-gateway", "rgb-lightning-node"]);
        for dir in dirs {
            // Relative sources, so the golden files do not depend on the checkout's path.
            let rel = Path::new("charts").join(dir.file_name().unwrap());
            let chart = Chart::load(&dir).unwrap();
            let rendered: Vec<Rendered> = chart
                .render(&Overrides::default())
                .unwrap()
                .into_iter()
                .map(|r| Rendered {
                    source: rel
                        .join(TEMPLATES_DIR)
                        .join(Path::new(&r.source).file_name().unwrap())
                        .display()
                        .to_string(),
                    ..r
                })
                .collect();
            assert_eq!(lint(&rendered), Vec::<String>::new(), "{}", dir.display());
            let stream = to_stream(&rendered);
            let golden = dir.join("golden.yaml");
            if std::env::var_os("MOORING_UPDATE_GOLDEN").is_some() {
                fs::write(&golden, &stream).unwrap();
            }
            let want = fs::read_to_string(&golden).unwrap_or_default();
            if want != stream {
                let diff = similar::TextDiff::from_lines(&want, &stream);
                panic!(
                    "{} renders differently from {} (MOORING_UPDATE_GOLDEN=1 rewrites it):\n{}",
                    dir.display(),
                    golden.display(),
                    diff.unified_diff().header("golden", "rendered")
                );
            }
        }
    }

    #[test]
    fn set_overrides_and_schema_and_strict_undefined() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts");
        let chart = Chart::load(&root.join("pulse-node")).unwrap();
        let overrides = Overrides::from_args(&[], &["replicas=3".into(), "software.version=2.0.0".into()]).unwrap();
        let stream = to_stream(&chart.render(&overrides).unwrap());
        let docs = api_types::parse_documents(&stream).unwrap();
        assert_eq!(docs.len(), 1, "{stream}");
        assert_eq!(docs[0]["spec"]["replicas"], 3, "{stream}");
        assert_eq!(docs[0]["spec"]["template"]["software"]["version"], "2.0.0", "{stream}");
        // The schema refuses a value of the wrong type, naming it.
        let bad = Overrides::from_args(&[], &["replicas=many".into()]).unwrap();
        let err = chart.render(&bad).unwrap_err().to_string();
        assert!(err.contains("values.replicas"), "{err}");

        // A template that names a value that does not exist fails, naming the template.
        let dir = std::env::temp_dir().join(format!("mooring-chart-{}", std::process::id()));
        fs::create_dir_all(dir.join(TEMPLATES_DIR)).unwrap();
        fs::write(dir.join(CHART_FILE), "name: t\nversion: 0.1.0\n").unwrap();
        fs::write(dir.join(VALUES_FILE), "image: x\n").unwrap();
        fs::write(dir.join(TEMPLATES_DIR).join("a.yaml"), "image: {{ values.imagee }}\n").unwrap();
        let err = Chart::load(&dir).unwrap().render(&Overrides::default()).unwrap_err().to_string();
        let _ = fs::remove_dir_all(&dir);
        assert!(err.starts_with("chart t: templates/a.yaml: "), "{err}");
        assert!(err.contains("undefined"), "{err}");
    }
}
