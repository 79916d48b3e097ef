//! `--config-file`: etcd's YAML configuration file (`etcd.conf.yml.sample` in etcd's repo).
//!
//! The keys are the flag names (`name`, `listen-client-urls`, `heartbeat-interval`, ...);
//! TLS settings sit in two nested blocks, `client-transport-security` and
//! `peer-transport-security` (`cert-file`, `key-file`, `client-cert-auth`, `trusted-ca-file`,
//! `auto-tls`, plus etcd 3.5's `allowed-cn`, `allowed-hostname`, `crl-file`). Each key becomes
//! the flag of the same name and goes through the same parser and checks as on the command
//! line. What etcd 3.4.23 does, and ferrokv with it:
//!
//! * values are typed as etcd's Go struct fields: numbers for counts and milliseconds,
//!   booleans (YAML 1.1 spellings such as `yes`/`on` too, as go-yaml reads them), strings
//!   for URL lists (comma-separated, as on the command line), a list for `log-outputs` and
//!   `cipher-suites`. A value of the wrong type is an error naming its line and column.
//!   Durations are integers of nanoseconds in etcd (Go's `time.Duration` in JSON); ferrokv
//!   also accepts Go duration strings such as `5s`;
//! * an empty or null value (`data-dir:`) leaves the default; so does an empty string;
//! * unknown keys are ignored (etcd's `yaml.Unmarshal` into a struct drops them); ferrokv
//!   also warns, with the line, since a typo would otherwise go unnoticed;
//! * a file that is not YAML is an error naming line and column; a missing file is
//!   `open <path>: <reason>` as in etcd;
//! * a key given twice: the last one wins (go-yaml's behaviour).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::ConfigError;
use super::catalog::{self, Kind, Status};
use super::flags::{Given, Origin};

/// What a config file sets.
#[derive(Debug, Default)]
pub struct Loaded {
    /// One setting per key that names a flag, in key order.
    pub settings: Vec<Given>,
    /// Unknown keys, one warning each.
    pub warnings: Vec<String>,
}

/// A YAML value, as much as a config file needs.
#[derive(Clone, Debug, PartialEq)]
enum Yaml {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Spanned<Yaml>>),
    Map(BTreeMap<String, Spanned<Yaml>>),
}

impl Yaml {
    fn type_name(&self) -> &'static str {
        match self {
            Yaml::Null => "null",
            Yaml::Bool(_) => "a boolean",
            Yaml::Int(_) => "an integer",
            Yaml::Float(_) => "a number",
            Yaml::Str(_) => "a string",
            Yaml::List(_) => "a list",
            Yaml::Map(_) => "a mapping",
        }
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct YamlVisitor;
        impl<'de> Visitor<'de> for YamlVisitor {
            type Value = Yaml;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_unit<E>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_none<E>(self) -> Result<Yaml, E> {
                Ok(Yaml::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
                Yaml::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Yaml, E> {
                Ok(Yaml::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Yaml, E> {
                Ok(Yaml::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Yaml, E> {
                Ok(Yaml::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Yaml, E> {
                Ok(Yaml::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Yaml, E> {
                i128::try_from(v)
                    .map(Yaml::Int)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Yaml, E> {
                Ok(Yaml::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Yaml, E> {
                Ok(Yaml::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Yaml, E> {
                Ok(Yaml::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Yaml::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, Spanned<Yaml>>()? {
                    entries.insert(key, value);
                }
                Ok(Yaml::Map(entries))
            }
        }
        deserializer.deserialize_any(YamlVisitor)
    }
}

/// Keys of the nested TLS blocks and the flags they stand for.
const CLIENT_SECURITY: &[(&str, &str)] = &[
    ("cert-file", "cert-file"),
    ("key-file", "key-file"),
    ("client-cert-auth", "client-cert-auth"),
    ("trusted-ca-file", "trusted-ca-file"),
    ("auto-tls", "auto-tls"),
    ("crl-file", "client-crl-file"),
    ("allowed-hostname", "client-cert-allowed-hostname"),
];
const PEER_SECURITY: &[(&str, &str)] = &[
    ("cert-file", "peer-cert-file"),
    ("key-file", "peer-key-file"),
    ("client-cert-auth", "peer-client-cert-auth"),
    ("trusted-ca-file", "peer-trusted-ca-file"),
    ("auto-tls", "peer-auto-tls"),
    ("crl-file", "peer-crl-file"),
    ("allowed-cn", "peer-cert-allowed-cn"),
    ("allowed-hostname", "peer-cert-allowed-hostname"),
];

/// Reads and converts the file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ConfigFileRead {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Converts the YAML `text` (read from `path`, used in messages) into settings.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        with_snippet: false,
    };
    let document: Option<Spanned<Yaml>> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|err| {
            let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
            ConfigError::ConfigFileSyntax {
                path: path.to_owned(),
                line,
                column,
                message: first_line(&err.to_string()),
            }
        })?;
    let mut loaded = Loaded::default();
    let entries = match document.map(|d| (d.value.clone(), d)) {
        None | Some((Yaml::Null, _)) => return Ok(loaded),
        Some((Yaml::Map(entries), _)) => entries,
        Some((other, spanned)) => {
            return Err(type_error(
                path,
                &spanned,
                "the file",
                "a mapping of keys",
                &other,
            ));
        }
    };
    for (key, value) in &entries {
        let block = match key.as_str() {
            "client-transport-security" => Some(CLIENT_SECURITY),
            "peer-transport-security" => Some(PEER_SECURITY),
            _ => None,
        };
        if let Some(block) = block {
            match &value.value {
                Yaml::Null => {}
                Yaml::Map(inner) => {
                    for (sub, sub_value) in inner {
                        match block.iter().find(|(k, _)| k == sub) {
                            Some((_, flag)) => {
                                add(&mut loaded, path, &format!("{key}.{sub}"), flag, sub_value)?
                            }
                            None => loaded.warnings.push(unknown_key(
                                path,
                                &format!("{key}.{sub}"),
                                sub_value,
                            )),
                        }
                    }
                }
                other => return Err(type_error(path, value, key, "a mapping", other)),
            }
            continue;
        }
        match catalog::lookup(key) {
            Some(flag) if flag.status != Status::Legacy => {
                add(&mut loaded, path, key, flag.name, value)?
            }
            _ => loaded.warnings.push(unknown_key(path, key, value)),
        }
    }
    Ok(loaded)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

fn unknown_key(path: &Path, key: &str, value: &Spanned<Yaml>) -> String {
    format!(
        "{}:{}: ignoring unknown config file key {key:?} (etcd ignores it too)",
        path.display(),
        value.referenced.line()
    )
}

fn type_error(
    path: &Path,
    value: &Spanned<Yaml>,
    key: &str,
    expected: &str,
    found: &Yaml,
) -> ConfigError {
    ConfigError::ConfigFileType {
        path: path.to_owned(),
        line: value.referenced.line(),
        column: value.referenced.column(),
        key: key.to_owned(),
        expected: expected.to_owned(),
        found: found.type_name(),
    }
}

/// Adds the setting for `flag_name` from `value` (at key `key`), typed as etcd types it.
fn add(
    loaded: &mut Loaded,
    path: &Path,
    key: &str,
    flag_name: &str,
    value: &Spanned<Yaml>,
) -> Result<(), ConfigError> {
    let flag = catalog::lookup(flag_name).expect("file keys map to catalog flags");
    let wrong = |expected: &str| type_error(path, value, key, expected, &value.value);
    let raw = match (&value.value, flag.kind) {
        (Yaml::Null, _) => return Ok(()),
        (Yaml::Bool(b), Kind::Bool) => b.to_string(),
        (_, Kind::Bool) => return Err(wrong("a boolean")),
        (Yaml::Int(n), Kind::Uint | Kind::Uint32) if *n >= 0 => n.to_string(),
        (_, Kind::Uint | Kind::Uint32) => return Err(wrong("an unsigned integer")),
        (Yaml::Int(n), Kind::Int) => n.to_string(),
        (_, Kind::Int) => return Err(wrong("an integer")),
        // etcd: an integer of nanoseconds; ferrokv also takes "5s".
        (Yaml::Int(n), Kind::Duration) => format!("{n}ns"),
        (Yaml::Str(s), Kind::Duration) => s.clone(),
        (_, Kind::Duration) => {
            return Err(wrong("an integer of nanoseconds or a duration like 5s"));
        }
        (Yaml::List(items), Kind::Strings) => {
            let mut texts = Vec::new();
            for item in items {
                match &item.value {
                    Yaml::Str(s) => texts.push(s.clone()),
                    other => return Err(type_error(path, item, key, "a string", other)),
                }
            }
            texts.join(",")
        }
        (Yaml::Str(s), _) => s.clone(),
        (_, Kind::Strings) => return Err(wrong("a list of strings")),
        (_, _) => return Err(wrong("a string")),
    };
    if raw.is_empty() {
        return Ok(());
    }
    let origin = Origin::File {
        path: PathBuf::from(path),
        line: value.referenced.line(),
        column: value.referenced.column(),
    };
    loaded.settings.retain(|g| g.flag.name != flag.name);
    loaded.settings.push(Given { flag, raw, origin });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Vec<(String, String)> {
        parse(Path::new("etcd.yml"), text)
            .unwrap()
            .settings
            .into_iter()
            .map(|g| (g.flag.name.to_owned(), g.raw))
            .collect()
    }

    #[test]
    fn keys_are_flag_names_and_values_take_etcds_types() {
        let got = settings(
            "name: 'n1'\nheartbeat-interval: 100\nenable-v2: yes\nlog-outputs: [stderr, stdout]\n\
             grpc-keepalive-min-time: 5000000000\ndata-dir:\nlisten-peer-urls: ''\n",
        );
        assert_eq!(
            got,
            [
                ("enable-v2", "true"),
                ("grpc-keepalive-min-time", "5000000000ns"),
                ("heartbeat-interval", "100"),
                ("log-outputs", "stderr,stdout"),
                ("name", "n1"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn nested_tls_blocks_map_to_the_tls_flags() {
        let got = settings(
            "client-transport-security:\n  cert-file: /c.pem\n  auto-tls: false\n\
             peer-transport-security:\n  client-cert-auth: true\n  allowed-cn: x\n",
        );
        assert_eq!(
            got,
            [
                ("auto-tls", "false"),
                ("cert-file", "/c.pem"),
                ("peer-cert-allowed-cn", "x"),
                ("peer-client-cert-auth", "true"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn unknown_keys_are_ignored_with_a_warning_naming_the_line() {
        let loaded = parse(Path::new("etcd.yml"), "name: a\nbogus-key: 42\n").unwrap();
        assert_eq!(loaded.settings.len(), 1);
        assert_eq!(
            loaded.warnings,
            ["etcd.yml:2: ignoring unknown config file key \"bogus-key\" (etcd ignores it too)"]
        );
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let err = parse(Path::new("etcd.yml"), "name: a\nheartbeat-interval: [1\n").unwrap_err();
        match &err {
            ConfigError::ConfigFileSyntax { line, .. } => assert!(*line >= 2, "{err}"),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().starts_with("etcd.yml:"), "{err}");
        let err = parse(Path::new("etcd.yml"), "name: a\n  data-dir: x\n").unwrap_err();
        assert!(
            matches!(err, ConfigError::ConfigFileSyntax { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_line_and_column() {
        let err = parse(
            Path::new("etcd.yml"),
            "name: a\nheartbeat-interval: \"abc\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "etcd.yml:2:21: heartbeat-interval: expected an unsigned integer, found a string"
        );
        let err = parse(
            Path::new("etcd.yml"),
            "listen-client-urls:\n  - http://a:1\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("listen-client-urls: expected a string, found a list"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        assert!(settings("").is_empty());
        assert!(settings("# only a comment\n").is_empty());
    }
}
