//! `omen sql`: an embedded SQL shell on a data directory, like sqlite3 or
//! duckdb: the same SQL as omen-serve, without a server. Line editing and
//! history (rustyline), `\d`, `\timing`, and `-c` for scripts.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use omen_engine::index::SegmentOptions;
use omen_sql::catalog::{Catalog, ColumnKind};
use omen_sql::datum::SqlType;
use omen_sql::exec::{Executor, Outcome, parse, render};
use omen_sql::loader::{Loader, Source};
use omen_sql::session::Session;
use omen_sql::vector::DistanceOp;

use crate::{Result, ToolError, say};

/// `--help` text of `omen sql`.
pub const LONG_ABOUT: &str = "\
An interactive SQL shell on a data directory: every segment file (*.omen) in \
DIR is a read-only table named after the file, and every collection directory \
a writable one. CREATE TABLE makes new collections in DIR. The SQL is \
omen-serve's: pgvector's operators <-> (L2), <#> (negative inner product) and \
<=> (cosine distance), vector literals '[1,2,3]', SET omen.ef_search, EXPLAIN.

End statements with ';'. Meta-commands: \\d (list tables), \\d NAME (describe a \
table), \\timing (toggle timing), \\q (quit), \\? (help).

Examples:
  omen sql data/
  omen sql data/ -c \"SELECT count(*) FROM index\"
  omen sql data/ -c \"SELECT id, embedding <-> '[0.1,0.2,…]' AS d FROM index ORDER BY embedding <-> '[0.1,0.2,…]' LIMIT 5\"
  omen sql data/ < script.sql";

/// Arguments of `omen sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// Data directory (segment files and collections), or one segment file.
    pub dir: PathBuf,
    /// Run this SQL and exit (repeatable; stops at the first error).
    #[arg(short = 'c', long = "command")]
    pub commands: Vec<String>,
    /// Refuse writes, as omen-serve does by default.
    #[arg(long)]
    pub read_only: bool,
}

/// Runs the shell.
pub fn run(args: &SqlArgs) -> Result<()> {
    if !args.dir.exists() {
        return Err(ToolError::Usage(format!(
            "{}: no such file or directory",
            args.dir.display()
        )));
    }
    let catalog = Arc::new(Catalog::new());
    let mut loader = Loader::new(
        vec![Source::Path(args.dir.clone())],
        SegmentOptions::default(),
    );
    for change in loader.refresh(&catalog) {
        if let omen_sql::loader::Change::Failed { path, error } = change {
            eprintln!("warning: {} not opened: {error}", path.display());
        }
    }
    let mut exec = Executor::new(catalog, args.read_only);
    if args.dir.is_dir() {
        exec = exec.with_data_dir(&args.dir);
    }
    let mut shell = Shell {
        exec,
        session: Session::default(),
        timing: false,
    };

    if !args.commands.is_empty() {
        for c in &args.commands {
            if c.trim_start().starts_with('\\') {
                shell.meta(c.trim())?;
            } else {
                shell.run_sql(c)?;
            }
        }
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        // A script on stdin: statements end with ';'.
        let mut buffer = String::new();
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| ToolError::io("stdin", e))?;
            if buffer.trim().is_empty() && line.trim_start().starts_with('\\') {
                shell.meta(line.trim())?;
                continue;
            }
            buffer.push_str(&line);
            buffer.push('\n');
            if line.trim_end().ends_with(';') {
                shell.run_sql(&std::mem::take(&mut buffer))?;
            }
        }
        if !buffer.trim().is_empty() {
            shell.run_sql(&buffer)?;
        }
        return Ok(());
    }
    shell.interactive()
}

struct Shell {
    exec: Executor,
    session: Session,
    timing: bool,
}

impl Shell {
    fn interactive(&mut self) -> Result<()> {
        use rustyline::error::ReadlineError;
        let mut editor = rustyline::DefaultEditor::new()
            .map_err(|e| ToolError::Usage(format!("cannot start line editing: {e}")))?;
        say!(
            "omen sql {}: type \\? for help, \\q to quit",
            env!("CARGO_PKG_VERSION")
        );
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                "omen=> "
            } else {
                "omen-> "
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    let _ = editor.add_history_entry(line.as_str());
                    if buffer.is_empty() && line.trim_start().starts_with('\\') {
                        if line.trim() == "\\q" {
                            return Ok(());
                        }
                        if let Err(e) = self.meta(line.trim()) {
                            eprintln!("error: {}", crate::cli::render_error(&e));
                        }
                        continue;
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if line.trim_end().ends_with(';') {
                        // Errors are shown and the shell goes on.
                        if let Err(e) = self.run_sql(&std::mem::take(&mut buffer)) {
                            match &e {
                                ToolError::Sql(s) => {
                                    eprintln!("ERROR:  {}: {}", s.sqlstate(), render(s))
                                }
                                other => eprintln!("error: {}", crate::cli::render_error(other)),
                            }
                        }
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => return Ok(()),
                Err(e) => return Err(ToolError::Usage(format!("line editing failed: {e}"))),
            }
        }
    }

    /// Runs SQL text, printing results; stops at the first error.
    fn run_sql(&mut self, sql: &str) -> Result<()> {
        for stmt in &parse(sql)? {
            let start = Instant::now();
            let out = self.exec.execute(stmt, &mut self.session, Vec::new())?;
            print_outcome(&out);
            if self.timing {
                say!("Time: {:.3} ms", start.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(())
    }

    fn meta(&mut self, line: &str) -> Result<()> {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("\\timing"), _) => {
                self.timing = !self.timing;
                say!("Timing is {}.", if self.timing { "on" } else { "off" });
            }
            (Some("\\d"), None) => {
                let mut rows = Vec::new();
                for t in self.exec.catalog().tables() {
                    let s = t.schema();
                    rows.push(vec![
                        s.name.clone(),
                        if t.writable() {
                            "collection"
                        } else {
                            "segment (read-only)"
                        }
                        .to_string(),
                        s.vector_column().1.to_string(),
                        DistanceOp::opclass(s.metric).to_string(),
                        t.count(None)
                            .map(|n| n.to_string())
                            .unwrap_or_else(|e| e.to_string()),
                    ]);
                }
                print_table(&["table", "kind", "dim", "index", "rows"], &rows);
            }
            (Some("\\d"), Some(name)) => {
                let t = self.exec.catalog().get(name)?;
                let rows: Vec<Vec<String>> = t
                    .schema()
                    .columns
                    .iter()
                    .map(|c| {
                        let ty = match c.kind {
                            ColumnKind::Id => "bigint (primary key)".to_string(),
                            ColumnKind::Vector { dim } => format!("vector({dim})"),
                            ColumnKind::Attribute(ty) => SqlType::of_column(ty).name().to_string(),
                        };
                        vec![c.name.clone(), ty]
                    })
                    .collect();
                print_table(&["column", "type"], &rows);
                say!("Index: omen ({})", DistanceOp::opclass(t.schema().metric));
            }
            (Some("\\?"), _) => say!(
                "\\d            list tables\n\\d NAME       describe a table\n\\timing        toggle timing of statements\n\\q             quit\nSQL ends with ';'. See `omen sql --help`."
            ),
            _ => {
                return Err(ToolError::Usage(format!(
                    "unknown command {line}; \\? lists them"
                )));
            }
        }
        Ok(())
    }
}

fn print_outcome(out: &Outcome) {
    match out {
        Outcome::CopyIn { .. } => {
            eprintln!(
                "COPY FROM STDIN needs a client connection (psql \\copy against omen-serve); here use INSERT … VALUES"
            );
        }
        Outcome::Command { tag, rows } => match rows {
            Some(n) => say!("{tag} {n}"),
            None => say!("{tag}"),
        },
        Outcome::Rows { columns, rows } => {
            let header: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(|d| d.to_text().unwrap_or_default()).collect())
                .collect();
            print_table(&header, &body);
        }
    }
}

/// psql's aligned format.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect::<Vec<_>>()
            .join("|")
    };
    say!(
        "{}",
        line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
    );
    say!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    for r in rows {
        say!("{}", line(r));
    }
    say!(
        "({} row{})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
}
