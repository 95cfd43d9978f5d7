//! Explaining mistakes in the server address, so `--server 127.0.0.1:8080` or an
//! `https://` URL to a plain-HTTP server ends with what to type instead, not
//! with a URL parser's or TLS library's words.

use reqwest::Url;

/// Why `--server` (or the context's server) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUrlError {
    /// `127.0.0.1:8080`, `localhost:8080`, `mooring.example.com`.
    #[error("server address {given:?} has no scheme; did you mean {suggestion}?")]
    MissingScheme { given: String, suggestion: String },
    /// `ftp://...`.
    #[error("server address {given:?}: scheme {scheme:?} is not http or https")]
    NotHttp { given: String, scheme: String },
    /// Anything else the URL parser refuses.
    #[error("invalid server address {given:?}: {reason}")]
    Invalid { given: String, reason: String },
}

/// Parses the server address, explaining the usual mistakes.
pub fn parse_server_url(given: &str) -> Result<Url, ServerUrlError> {
    let given = given.trim();
    let missing_scheme = || ServerUrlError::MissingScheme {
        given: given.to_string(),
        suggestion: format!("{}://{}", scheme_for(given), given.trim_end_matches('/')),
    };
    match Url::parse(given) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(ServerUrlError::Invalid { given: given.to_string(), reason: "no host".to_string() });
            }
            Ok(url)
        }
        // `localhost:8080` parses as scheme `localhost`, path `8080`.
        Ok(_) if !given.contains("://") => Err(missing_scheme()),
        Ok(url) => Err(ServerUrlError::NotHttp { given: given.to_string(), scheme: url.scheme().to_string() }),
        Err(url::ParseError::RelativeUrlWithoutBase) if !given.is_empty() && !given.contains(char::is_whitespace) => {
            Err(missing_scheme())
        }
        Err(e) => Err(ServerUrlError::Invalid { given: given.to_string(), reason: e.to_string() }),
    }
}

/// The scheme to suggest for an address without one: plain HTTP on this machine
/// (how `mooring serve` listens by default), HTTPS anywhere else.
fn scheme_for(address: &str) -> &'static str {
    let host = address.split(['/', ':']).next().unwrap_or_default();
    let local = host == "localhost" || host.starts_with("127.") || host == "0.0.0.0" || host.starts_with('[');
    if local { "http" } else { "https" }
}

/// What to say when a TLS handshake with `server` failed with `cause`: a plain
/// HTTP server answering a TLS client makes rustls report a "corrupt message of
/// type InvalidContentType"; say that and suggest `http://`.
pub fn tls_mistake(server: &str, cause: &str) -> Option<String> {
    let rest = server.strip_prefix("https://")?;
    let plain = cause.contains("InvalidContentType") || cause.contains("corrupt message");
    plain.then(|| {
        format!("{server} does not speak TLS (it answered in plain HTTP); use http://{rest}, or serve the API with TLS")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_address_mistakes_are_explained() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("http://127.0.0.1:8080", Ok("http://127.0.0.1:8080/")),
            ("https://mooring.example.com/", Ok("https://mooring.example.com/")),
            (
                "127.0.0.1:8080",
                Err("server address \"127.0.0.1:8080\" has no scheme; did you mean http://127.0.0.1:8080?"),
            ),
            (
                "localhost:8080",
                Err("server address \"localhost:8080\" has no scheme; did you mean http://localhost:8080?"),
            ),
            (
                "mooring.example.com",
                Err("server address \"mooring.example.com\" has no scheme; did you mean https://mooring.example.com?"),
            ),
            ("ftp://x", Err("server address \"ftp://x\": scheme \"ftp\" is not http or https")),
            ("http://", Err("invalid server address \"http://\": empty host")),
            ("not a url", Err("invalid server address \"not a url\": relative URL without a base")),
        ];
        for (given, expected) in cases {
            let got = parse_server_url(given).map(|u| u.to_string()).map_err(|e| e.to_string());
            assert_eq!(got.as_deref().map_err(String::as_str), *expected, "{given}");
        }
    }

    #[test]
    fn tls_to_a_plain_server_is_explained() {
        let cause = "received corrupt message of type InvalidContentType";
        assert_eq!(
            tls_mistake("https://127.0.0.1:8080", cause).as_deref(),
            Some(
                "https://127.0.0.1:8080 does not speak TLS (it answered in plain HTTP); use http://127.0.0.1:8080, or serve the API with TLS"
            )
        );
        assert_eq!(tls_mistake("http://127.0.0.1:8080", cause), None);
        assert_eq!(tls_mistake("https://h", "Connection refused (os error 111)"), None);
    }
}
