//! `mooring edit KIND NAME`: opens the resource's document in `$VISUAL` /
//! `$EDITOR` and writes the result back as a replace carrying the
//! `resourceVersion` that was read, so a change someone made meanwhile is
//! refused (409), never overwritten.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use super::Target;
use crate::cli::client::ApiClient;
use crate::cli::output;

/// The editor when neither `VISUAL` nor `EDITOR` is set.
const DEFAULT_EDITOR: &str = "vi";

/// Runs `edit`.
pub async fn run(client: &ApiClient, target: Target) -> anyhow::Result<ExitCode> {
    let mut doc = client.get(target.kind, target.ns(), &target.name).await?;
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("status");
    }
    let original = output::to_yaml(&doc)?;
    let path = scratch_file(&target);
    std::fs::write(&path, &original).with_context(|| format!("writing {}", path.display()))?;
    run_editor(&editor(|v| std::env::var(v).ok()), &path)?;
    let edited = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if edited == original || edited.trim().is_empty() {
        let _ = std::fs::remove_file(&path);
        output::print("Edit cancelled, no changes made.\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    match client.replace_yaml(target.kind, target.ns(), &target.name, edited).await {
        Ok(stored) => {
            let _ = std::fs::remove_file(&path);
            let generation = stored.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or_default();
            output::print(&format!("{} edited (generation {generation})\n", target.reference()))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => bail!("{e}\nyour edit is kept in {}; fix it and `mooring apply -f` it", path.display()),
    }
}

/// `$VISUAL`, else `$EDITOR`, else `vi` (as kubectl and git choose).
fn editor(var: impl Fn(&str) -> Option<String>) -> String {
    ["VISUAL", "EDITOR"]
        .into_iter()
        .filter_map(var)
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_EDITOR.to_string())
}

/// Runs the editor through the shell, so `EDITOR="code --wait"` works.
fn run_editor(editor: &str, path: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("mooring-edit")
        .arg(path)
        .status()
        .with_context(|| format!("starting the editor {editor:?}"))?;
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}; nothing was changed (the file is {})", path.display());
    }
    Ok(())
}

/// A file of its own for this edit, named after the resource.
fn scratch_file(target: &Target) -> PathBuf {
    let kind = target.kind.as_str().to_ascii_lowercase();
    std::env::temp_dir().join(format!("mooring-edit-{kind}-{}-{}.yaml", target.name, std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_editor_like_git() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |v: &str| pairs.iter().find(|(k, _)| *k == v).map(|(_, x)| x.to_string())
        };
        assert_eq!(editor(vars(&[("VISUAL", "code --wait"), ("EDITOR", "nano")])), "code --wait");
        assert_eq!(editor(vars(&[("VISUAL", " "), ("EDITOR", "nano")])), "nano");
        assert_eq!(editor(vars(&[])), "vi");
    }
}
