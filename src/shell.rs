//! Shell words: quoting the commands docsweep prints so that they run as printed, and
//! splitting them back (`repair plan --from-report` runs a report's commands).

/// Quotes a shell word when it needs it.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Splits a command line as `sh` would: words made with [`quote`] (or double quotes, or
/// backslashes) come back as they were.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => w.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => w.push(ch),
                            Some(ch) => {
                                w.push('\\');
                                w.push(ch);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => w.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(ch) => cur.get_or_insert_with(String::new).push(ch),
                None => return Err("a trailing backslash".into()),
            },
            ch => cur.get_or_insert_with(String::new).push(ch),
        }
    }
    words.extend(cur);
    Ok(words)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_quoting() {
        assert_eq!(super::quote("dump:./data/dump"), "dump:./data/dump");
        assert_eq!(super::quote("key={\"a\": 1}"), "'key={\"a\": 1}'");
        assert_eq!(super::quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn commands_split_back_into_the_words_they_were_made_of() {
        let words = ["docsweep", "key={\"a\": 1}", "it's", "dump:./d", "a b", ""];
        let line: Vec<String> = words.iter().map(|w| super::quote(w)).collect();
        assert_eq!(super::words(&line.join(" ")).unwrap(), words);
        assert_eq!(
            super::words(r#"a "b \"c\"" d\ e"#).unwrap(),
            ["a", "b \"c\"", "d e"]
        );
        assert!(super::words("'open").is_err());
    }
}
