//! `compute` expressions: fields and numbers with `+ - * /` and parentheses, parsed when a
//! template is loaded and evaluated exactly (decimal arithmetic) on each document.

use std::fmt;

use serde_json::Value;

use super::check_path;
use super::decimal::{Dec, Num};
use super::doc_path::get;

/// A parsed `compute` expression: fields and numbers with `+ - * /` and parentheses.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub text: String,
    node: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Num(Dec, bool),
    Field(String),
    Neg(Box<Node>),
    Bin(Box<Node>, u8, Box<Node>),
}

impl Expr {
    /// The expression's value on `doc`; on failure, the field (if any) and why.
    pub(super) fn eval(&self, doc: &Value) -> Result<Num, (String, String)> {
        eval(&self.node, doc)
    }

    pub fn parse(text: &str) -> Result<Expr, String> {
        let toks = tokenize(text)?;
        let mut p = ExprParser { toks, pos: 0 };
        let node = p.expr(0)?;
        if p.pos != p.toks.len() {
            return Err(format!("expression {text:?}: unexpected {}", p.toks[p.pos]));
        }
        Ok(Expr {
            text: text.to_string(),
            node,
        })
    }

    /// The fields the expression reads.
    pub fn fields(&self) -> Vec<&str> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
            match n {
                Node::Num(..) => {}
                Node::Field(f) => out.push(f),
                Node::Neg(a) => walk(a, out),
                Node::Bin(a, _, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.node, &mut out);
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(String),
    Ident(String),
    Op(u8),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(s) => write!(f, "number {s}"),
            Tok::Ident(s) => write!(f, "field {s}"),
            Tok::Op(c) => write!(f, "`{}`", *c as char),
        }
    }
}

pub(super) fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if matches!(c, b'+' | b'-' | b'*' | b'/' | b'(' | b')') {
            out.push(Tok::Op(c));
            i += 1;
        } else if c.is_ascii_digit() || c == b'.' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Num(text[s..i].to_string()));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let f = &text[s..i];
            check_path(f).map_err(|m| format!("expression {text:?}: {m}"))?;
            out.push(Tok::Ident(f.to_string()));
        } else {
            return Err(format!(
                "expression {text:?}: unexpected character {:?} (only fields, numbers, + - * / and parentheses)",
                text[i..].chars().next().unwrap_or('?')
            ));
        }
    }
    if out.is_empty() {
        return Err("expression is empty".into());
    }
    Ok(out)
}

pub(super) struct ExprParser {
    toks: Vec<Tok>,
    pos: usize,
}

pub(super) const MAX_EXPR_DEPTH: usize = 64;

impl ExprParser {
    fn expr(&mut self, depth: usize) -> Result<Node, String> {
        let mut lhs = self.term(depth)?;
        while let Some(Tok::Op(op @ (b'+' | b'-'))) = self.toks.get(self.pos).cloned() {
            self.pos += 1;
            let rhs = self.term(depth)?;
            lhs = Node::Bin(Box::new(lhs), op, Box::new(rhs));
        }
        Ok(lhs)
    }

    fn term(&mut self, depth: usize) -> Result<Node, String> {
        let mut lhs = self.unary(depth)?;
        while let Some(Tok::Op(op @ (b'*' | b'/'))) = self.toks.get(self.pos).cloned() {
            self.pos += 1;
            let rhs = self.unary(depth)?;
            lhs = Node::Bin(Box::new(lhs), op, Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_EXPR_DEPTH {
            return Err("expression is nested too deeply".into());
        }
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Op(b'-')) => {
                self.pos += 1;
                Ok(Node::Neg(Box::new(self.unary(depth + 1)?)))
            }
            Some(Tok::Op(b'(')) => {
                self.pos += 1;
                let e = self.expr(depth + 1)?;
                match self.toks.get(self.pos) {
                    Some(Tok::Op(b')')) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    _ => Err("expression: missing `)`".into()),
                }
            }
            Some(Tok::Num(s)) => {
                self.pos += 1;
                let d = Dec::parse(&s).ok_or_else(|| format!("expression: bad number {s:?}"))?;
                Ok(Node::Num(d, s.contains('.')))
            }
            Some(Tok::Ident(f)) => {
                self.pos += 1;
                Ok(Node::Field(f))
            }
            Some(t) => Err(format!("expression: unexpected {t}")),
            None => Err("expression ends too early".into()),
        }
    }
}

fn eval(node: &Node, doc: &Value) -> Result<Num, (String, String)> {
    match node {
        Node::Num(d, frac) => Ok(Num::Exact(*d, *frac)),
        Node::Field(f) => {
            let v = get(doc, f).ok_or_else(|| (f.clone(), "the field is missing".to_string()))?;
            Num::from_value(v).map_err(|m| (f.clone(), m))
        }
        Node::Neg(a) => {
            let v = eval(a, doc)?;
            Num::Exact(Dec::int(0), false)
                .binop(b'-', v)
                .map_err(|m| (String::new(), m))
        }
        Node::Bin(a, op, b) => {
            let x = eval(a, doc)?;
            let y = eval(b, doc)?;
            let r = x.binop(*op, y).map_err(|m| (String::new(), m))?;
            // A division makes the natural result type a double.
            Ok(match (r, *op) {
                (Num::Exact(d, _), b'/') => Num::Exact(d, true),
                _ => r,
            })
        }
    }
}
