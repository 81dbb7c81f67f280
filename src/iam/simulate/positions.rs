//! Statement positions (`StartPosition`/`EndPosition`) in a policy document's text, in IAM's
//! convention (see the documentation of the simulator module).

/// A line and column in a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// Column (see the module documentation).
    pub column: usize,
}

/// A scanner over valid JSON that only finds where values begin and end.
struct Scan {
    chars: Vec<char>,
    at: usize,
}

impl Scan {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn expect(&mut self, c: char) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.at += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.next()? {
                '"' => return Some(out),
                '\\' => match self.next()? {
                    'u' => {
                        let hex: String = (0..4).map(|_| self.next()).collect::<Option<_>>()?;
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                    }
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    other => out.push(other),
                },
                c => out.push(c),
            }
        }
    }

    /// The rest of an array or object after its opening character: `item` reads each element,
    /// and `close` ends them.
    fn elements(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.skip_ws();
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.skip_ws();
            match self.next()? {
                ',' => continue,
                c if c == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// The rest of an object after `{`: `value` reads each member's value, given its name.
    fn members(&mut self, mut value: impl FnMut(&mut Self, String) -> Option<()>) -> Option<()> {
        self.elements('}', |s| {
            s.skip_ws();
            let name = s.string()?;
            s.skip_ws();
            s.expect(':')?;
            value(s, name)
        })
    }

    /// Skips one value (after any whitespace).
    fn value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            '{' => {
                self.at += 1;
                self.members(|s, _| s.value())
            }
            '[' => {
                self.at += 1;
                self.elements(']', Self::value)
            }
            '"' => self.string().map(|_| ()),
            _ => {
                let start = self.at;
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | '}' | ']' | ' ' | '\t' | '\n' | '\r'))
                {
                    self.at += 1;
                }
                (self.at > start).then_some(())
            }
        }
    }

    /// One value whose first and last characters are recorded (as character indices).
    fn spanned(&mut self) -> Option<(usize, usize)> {
        self.skip_ws();
        let start = self.at;
        self.value()?;
        Some((start, self.at - 1))
    }

    /// The spans of the elements of the top-level `Statement` (one for a single object).
    fn statements(&mut self) -> Option<Vec<(usize, usize)>> {
        let mut spans = Vec::new();
        self.skip_ws();
        self.expect('{')?;
        self.members(|s, name| {
            if name != "Statement" {
                return s.value();
            }
            s.skip_ws();
            if s.peek()? == '[' {
                s.at += 1;
                s.elements(']', |s| {
                    spans.push(s.spanned()?);
                    Some(())
                })
            } else {
                spans.push(s.spanned()?);
                Some(())
            }
        })?;
        Some(spans)
    }
}

/// Where each statement of a policy document begins and ends, in IAM's convention (see the module
/// documentation); empty when the text cannot be scanned.
pub(crate) fn statement_positions(text: &str) -> Vec<(Position, Position)> {
    let mut scan = Scan {
        chars: text.chars().collect(),
        at: 0,
    };
    let Some(spans) = scan.statements() else {
        return Vec::new();
    };
    // Character index at which each line starts; `\n`, `\r\n` and a lone `\r` end a line.
    let chars = &scan.chars;
    let mut line_starts = vec![0usize];
    for (i, c) in chars.iter().enumerate() {
        match c {
            '\n' => line_starts.push(i + 1),
            '\r' if chars.get(i + 1) != Some(&'\n') => line_starts.push(i + 1),
            _ => {}
        }
    }
    let position = |i: usize| {
        let line = line_starts.partition_point(|s| *s <= i);
        Position {
            line,
            column: i - line_starts[line - 1] + 2,
        }
    };
    spans
        .into_iter()
        .map(|(start, end)| (position(start), position(end)))
        .collect()
}
