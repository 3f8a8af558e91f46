//! One-line texts for OS errors, as people expect them in an `Error: …` line.

use std::io;

/// The error's text without Rust's ` (os error N)` suffix, which only adds noise.
pub fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Squeezes a multi-line text (an agent's error body) onto one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&e), "No such file or directory");
    }

    #[test]
    fn keeps_texts_without_suffix() {
        let e = io::Error::other("boom");
        assert_eq!(io_message(&e), "boom");
    }

    #[test]
    fn squeezes_lines() {
        assert_eq!(
            one_line("Invalid check:\n  bad interval\n"),
            "Invalid check: bad interval"
        );
    }
}
