//! Aligned columns for people, like the `columnize` package Consul's commands use:
//! cells separated by two spaces, no trailing blanks.

/// Formats rows (the first usually a header) into aligned lines, without a trailing newline.
pub fn format<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    rows.iter()
        .map(|row| {
            let cells = row.as_ref();
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < cells.len() {
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.truncate(line.trim_end().len());
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn aligns_on_the_widest_cell() {
        let rows = [
            row(&["Node", "Address", "Status"]),
            row(&["a-long-name", "10.0.0.1:8301", "alive"]),
        ];
        assert_eq!(
            format(&rows),
            "Node         Address        Status\na-long-name  10.0.0.1:8301  alive"
        );
    }

    #[test]
    fn no_trailing_blanks_and_empty_cells_keep_their_place() {
        let rows = [row(&["a", "", "x"]), row(&["bb", "yyyy", ""])];
        assert_eq!(format(&rows), "a         x\nbb  yyyy");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let rows = [row(&["é", "1"]), row(&["ab", "2"])];
        assert_eq!(format(&rows), "é   1\nab  2");
    }

    #[test]
    fn no_rows_is_empty() {
        assert_eq!(format::<Vec<String>>(&[]), "");
    }
}
