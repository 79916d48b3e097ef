//! Plain-text tables for the workloads' results: the first column left-aligned, the others
//! right-aligned, each as wide as its widest cell.

/// One row: cells under the header, or a label with a free-form note.
enum Row {
    Cells(Vec<String>),
    Note(String, String),
}

/// A table: a title line, a header row and data rows.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Row>,
}

impl Table {
    /// An empty table with this title and these column names.
    pub fn new(title: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing trailing cells are left blank, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.header.len(), String::new());
        self.rows.push(Row::Cells(cells));
    }

    /// Appends a row that has only a label and a note spanning the rest (e.g. "unsupported").
    pub fn note_row(&mut self, label: &str, note: impl Into<String>) {
        self.rows.push(Row::Note(label.to_string(), note.into()));
    }

    /// Renders the table; a note row prints its note after the padded label.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            match row {
                Row::Cells(cells) => {
                    for (w, cell) in widths.iter_mut().zip(cells) {
                        *w = (*w).max(cell.chars().count());
                    }
                }
                Row::Note(label, _) => widths[0] = widths[0].max(label.chars().count()),
            }
        }
        let cells_line = |cells: &[String]| {
            let mut out = format!("{:<w$}", cells[0], w = widths[0]);
            for (cell, w) in cells.iter().zip(&widths).skip(1) {
                out.push_str(&format!("  {cell:>w$}"));
            }
            out.trim_end().to_string()
        };
        let mut out = format!("\n{}\n{}\n", self.title, cells_line(&self.header));
        for row in &self.rows {
            match row {
                Row::Cells(cells) => out.push_str(&cells_line(cells)),
                Row::Note(label, note) => {
                    out.push_str(&format!("{label:<w$}  {note}", w = widths[0]))
                }
            }
            out.push('\n');
        }
        out
    }
}

/// `a / b` formatted as `1.23x`, or empty when either side is missing or `b` is zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}x", a / b),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_note_rows_span() {
        let mut t = Table::new("T", &["server", "ops/s"]);
        t.row(vec!["ferrokv".into(), "12345".into()]);
        t.note_row("etcd", "unsupported (Unimplemented)");
        assert_eq!(
            t.render(),
            "\nT\nserver   ops/s\nferrokv  12345\netcd     unsupported (Unimplemented)\n"
        );
    }

    #[test]
    fn ratio_needs_both_sides_and_a_nonzero_divisor() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50x");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "");
        assert_eq!(ratio(None, Some(2.0)), "");
    }
}
