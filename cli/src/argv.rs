//! Consul's commands take long flags with one dash (`-http-addr`), clap wants two.
//!
//! Rewriting argv before clap sees it lets both spellings work without teaching clap
//! anything. Consul's commands have no short flags, so a single dash followed by two
//! or more characters is always a long flag; `-h` stays clap's help flag.

use std::ffi::OsString;

/// Rewrites `-foo` and `-foo=bar` into `--foo` and `--foo=bar`, up to a bare `--`.
///
/// Negative numbers (`-1`, `-0.5`) are left alone: they are values, not flags.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut rest_is_positional = false;
    for arg in args {
        if rest_is_positional {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            rest_is_positional = true;
            out.push(arg);
            continue;
        }
        match arg.to_str() {
            Some(s) if is_single_dash_long_flag(s) => out.push(format!("-{s}").into()),
            _ => out.push(arg),
        }
    }
    out
}

fn is_single_dash_long_flag(arg: &str) -> bool {
    let Some(rest) = arg.strip_prefix('-') else {
        return false;
    };
    let name = rest.split('=').next().unwrap_or_default();
    !rest.starts_with('-') && name.chars().count() >= 2 && !is_number(rest)
}

/// A value like `-1` or `-.5`; checked by its first character so that `-inf` stays a flag.
fn is_number(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit() || c == '.') && s.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_get_two_dashes() {
        assert_eq!(
            norm(&[
                "shoal",
                "-http-addr",
                "127.0.0.2:8500",
                "members",
                "-detailed"
            ]),
            [
                "shoal",
                "--http-addr",
                "127.0.0.2:8500",
                "members",
                "--detailed"
            ]
        );
    }

    #[test]
    fn flag_with_value_after_equals() {
        assert_eq!(
            norm(&["-meta=a=b", "-name=-x"]),
            ["--meta=a=b", "--name=-x"]
        );
    }

    #[test]
    fn double_dash_flags_are_untouched() {
        assert_eq!(norm(&["--stale", "--port=80"]), ["--stale", "--port=80"]);
    }

    #[test]
    fn short_flags_and_plain_words_are_untouched() {
        assert_eq!(
            norm(&["-h", "-", "members", "web.json"]),
            ["-h", "-", "members", "web.json"]
        );
    }

    #[test]
    fn negative_numbers_are_values() {
        assert_eq!(
            norm(&["-port", "-1", "-0.5", "-1e3"]),
            ["--port", "-1", "-0.5", "-1e3"]
        );
    }

    #[test]
    fn everything_after_double_dash_is_positional() {
        assert_eq!(norm(&["-id", "--", "-weird"]), ["--id", "--", "-weird"]);
    }

    #[test]
    fn words_that_parse_as_floats_are_still_flags() {
        assert_eq!(norm(&["-inf", "-nan"]), ["--inf", "--nan"]);
    }

    #[test]
    fn single_char_with_value_is_a_short_flag() {
        assert_eq!(norm(&["-h=x"]), ["-h=x"]);
    }
}
