//! The CLI configuration file: named contexts (server, token, default namespace),
//! like a kubeconfig, so a user with several installs does not retype flags.
//!
//! ```toml
//! current-context = "local"
//!
//! [contexts.local]
//! server = "http://127.0.0.1:8080"
//! token = "…"
//!
//! [contexts.prod]
//! server = "https://mooring.example.com"
//! token-env = "MOORING_PROD_TOKEN"   # read the token from this variable instead
//! namespace = "payments"
//! ```
//!
//! The file is `--config` / `MOORING_CONFIG`, else `$XDG_CONFIG_HOME/mooring/config.toml`,
//! else `~/.config/mooring/config.toml` (on every OS, as the documentation says; a
//! missing default file is no configuration). The context is `--context` /
//! `MOORING_CONTEXT`, else `current-context`. A flag or its environment variable
//! always wins over the context, and the context over the built-in defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The server a client talks to when neither a flag, the environment nor a
/// context names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// What went wrong reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists (or was named) but cannot be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid configuration file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    /// The context asked for is not in the file.
    #[error("context {name:?} is not in {path} (contexts: {known})")]
    UnknownContext { name: String, path: String, known: String },
    /// A context reads its token from a variable that is not set.
    #[error("context {context:?} reads its token from ${var}, which is not set")]
    TokenEnvUnset { context: String, var: String },
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigFile {
    /// The context used when none is named.
    #[serde(default)]
    pub current_context: Option<String>,
    /// The contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One install as seen from the CLI.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Context {
    /// The server's base URL.
    pub server: Option<String>,
    /// The API token, inline.
    pub token: Option<String>,
    /// The name of an environment variable holding the token (kept out of the file).
    pub token_env: Option<String>,
    /// The namespace commands act in when `-n` is not given.
    pub namespace: Option<String>,
}

/// Where a client command connects, and as whom, after flags, environment,
/// configuration and defaults are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The server's base URL.
    pub server: String,
    /// The token, if any.
    pub token: Option<String>,
    /// The default namespace for `-n`, if the context sets one.
    pub namespace: Option<String>,
    /// The context used, if any.
    pub context: Option<String>,
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
}

/// What the command line (flags and their environment variables) said.
#[derive(Debug, Clone, Default)]
pub struct Given<'a> {
    pub server: Option<&'a str>,
    pub token: Option<&'a str>,
    pub context: Option<&'a str>,
    pub config: Option<&'a Path>,
}

/// The default configuration path for an environment (`XDG_CONFIG_HOME`, `HOME`).
pub fn default_path(xdg_config_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    match (xdg_config_home.filter(|s| !s.is_empty()), home.filter(|s| !s.is_empty())) {
        (Some(xdg), _) => Some(Path::new(xdg).join("mooring").join("config.toml")),
        (None, Some(home)) => Some(Path::new(home).join(".config").join("mooring").join("config.toml")),
        (None, None) => None,
    }
}

/// Reads the file `given.config` names (which must exist), or the default one
/// (which may not), and combines it with `given`. `env` looks up variables
/// (`token-env`, and `XDG_CONFIG_HOME` / `HOME` for the default path).
pub fn resolve(given: &Given<'_>, env: impl Fn(&str) -> Option<String>) -> Result<Resolved, ConfigError> {
    let (path, required) = match given.config {
        Some(p) => (Some(p.to_path_buf()), true),
        None => (default_path(env("XDG_CONFIG_HOME").as_deref(), env("HOME").as_deref()), false),
    };
    let (file, read_from) = match &path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => (parse(&text, p)?, Some(p.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => (ConfigFile::default(), None),
            Err(source) => return Err(ConfigError::Read { path: p.clone(), source }),
        },
        None => (ConfigFile::default(), None),
    };
    combine(given, &file, read_from, env)
}

/// Parses a configuration file's text.
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(e) })
}

/// Flags over the context over the defaults: the pure part of [`resolve`].
pub fn combine(
    given: &Given<'_>,
    file: &ConfigFile,
    path: Option<PathBuf>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Resolved, ConfigError> {
    let wanted = given.context.map(str::to_string).or_else(|| file.current_context.clone());
    let context = match &wanted {
        Some(name) => Some(file.contexts.get(name).ok_or_else(|| ConfigError::UnknownContext {
            name: name.clone(),
            path: path.as_ref().map_or_else(|| "no configuration file".to_string(), |p| p.display().to_string()),
            known: if file.contexts.is_empty() {
                "none".to_string()
            } else {
                file.contexts.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })?),
        None => None,
    };
    let from_context = |f: fn(&Context) -> Option<&String>| context.and_then(f).cloned();
    let server = given
        .server
        .map(str::to_string)
        .or_else(|| from_context(|c| c.server.as_ref()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let token = match (given.token, context) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(c)) => match (&c.token, &c.token_env) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(var)) => Some(env(var).ok_or_else(|| ConfigError::TokenEnvUnset {
                context: wanted.clone().unwrap_or_default(),
                var: var.clone(),
            })?),
            (None, None) => None,
        },
        (None, None) => None,
    };
    Ok(Resolved { server, token, namespace: from_context(|c| c.namespace.as_ref()), context: wanted, file: path })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
current-context = "local"

[contexts.local]
server = "http://127.0.0.1:9000"
token = "local-token"

[contexts.prod]
server = "https://mooring.example.com"
token-env = "PROD_TOKEN"
namespace = "payments"
"#;

    fn env(var: &str) -> Option<String> {
        (var == "PROD_TOKEN").then(|| "prod-secret".to_string())
    }

    fn file() -> ConfigFile {
        parse(FILE, Path::new("c.toml")).unwrap()
    }

    #[test]
    fn precedence_table() {
        let f = file();
        // (given server, token, context) → (server, token, namespace, context)
        type Given3<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);
        type Want<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let cases: [(Given3, Want); 5] = [
            ((None, None, None), ("http://127.0.0.1:9000", Some("local-token"), None, Some("local"))),
            (
                (None, None, Some("prod")),
                ("https://mooring.example.com", Some("prod-secret"), Some("payments"), Some("prod")),
            ),
            (
                (Some("http://flag:1"), None, Some("prod")),
                ("http://flag:1", Some("prod-secret"), Some("payments"), Some("prod")),
            ),
            ((None, Some("flag-token"), None), ("http://127.0.0.1:9000", Some("flag-token"), None, Some("local"))),
            ((Some("http://flag:1"), Some("t"), None), ("http://flag:1", Some("t"), None, Some("local"))),
        ];
        for ((server, token, context), want) in cases {
            let given = Given { server, token, context, config: None };
            let r = combine(&given, &f, None, env).unwrap();
            assert_eq!(
                (r.server.as_str(), r.token.as_deref(), r.namespace.as_deref(), r.context.as_deref()),
                want,
                "{server:?} {token:?} {context:?}"
            );
        }
        // No file at all: the built-in default.
        let r = combine(&Given::default(), &ConfigFile::default(), None, env).unwrap();
        assert_eq!((r.server.as_str(), r.token, r.context), (DEFAULT_SERVER, None, None));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let f = file();
        let err = combine(&Given { context: Some("staging"), ..Given::default() }, &f, None, env).unwrap_err();
        assert_eq!(err.to_string(), "context \"staging\" is not in no configuration file (contexts: local, prod)");
        let err = combine(&Given { context: Some("prod"), ..Given::default() }, &f, None, |_| None).unwrap_err();
        assert_eq!(err.to_string(), "context \"prod\" reads its token from $PROD_TOKEN, which is not set");
        let err = parse("[contexts.x]\nsrever = \"typo\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().starts_with("invalid configuration file c.toml: "), "{err}");
        assert!(err.to_string().contains("srever"), "{err}");
    }

    #[test]
    fn default_path_follows_xdg() {
        assert_eq!(default_path(Some("/x"), Some("/home/u")), Some(PathBuf::from("/x/mooring/config.toml")));
        assert_eq!(default_path(Some(""), Some("/home/u")), Some(PathBuf::from("/home/u/.config/mooring/config.toml")));
        assert_eq!(default_path(None, None), None);
    }

    #[test]
    fn a_named_file_must_exist_the_default_may_not() {
        let missing = std::env::temp_dir().join(format!("mooring-no-config-{}.toml", std::process::id()));
        let given = Given { config: Some(&missing), ..Given::default() };
        assert!(matches!(resolve(&given, |_| None), Err(ConfigError::Read { .. })));
        let home = std::env::temp_dir().join(format!("mooring-no-home-{}", std::process::id()));
        let home = home.to_str().unwrap().to_string();
        let r = resolve(&Given::default(), move |v| (v == "HOME").then(|| home.clone())).unwrap();
        assert_eq!((r.server.as_str(), r.file), (DEFAULT_SERVER, None));
    }
}
