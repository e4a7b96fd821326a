//! Exact decimals (mantissa × 10^exp) for scaling and arithmetic without binary rounding,
//! and the numbers expressions compute with.

use std::fmt;

use serde_json::Value;

use super::kinds::{date_value, decimal_value, double_value, kind, wrapper};
use super::{Rounding, TypeName};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Dec {
    pub(super) m: i128,
    pub(super) e: i32,
}

impl Dec {
    pub(super) fn int(i: i64) -> Dec {
        Dec {
            m: i128::from(i),
            e: 0,
        }
    }

    /// Parses `[-+]digits[.digits][e[-+]digits]`; None when malformed or too long.
    pub(super) fn parse(s: &str) -> Option<Dec> {
        let (neg, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (num, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
            None => (body, 0),
        };
        let (ip, fp) = match num.split_once('.') {
            Some((a, b)) => (a, b),
            None => (num, ""),
        };
        if ip.is_empty() && fp.is_empty() {
            return None;
        }
        let mut m: i128 = 0;
        for c in ip.bytes().chain(fp.bytes()) {
            if !c.is_ascii_digit() {
                return None;
            }
            m = m.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
        }
        let e = exp.checked_sub(i32::try_from(fp.len()).ok()?)?;
        // Beyond Decimal128's range; also keeps `to_string` small.
        if !(-MAX_DEC_EXP..=MAX_DEC_EXP).contains(&e) {
            return None;
        }
        Some(
            Dec {
                m: if neg { -m } else { m },
                e,
            }
            .trim(),
        )
    }

    pub(super) fn from_f64(x: f64) -> Option<Dec> {
        if !x.is_finite() {
            return None;
        }
        Dec::parse(&format!("{x}"))
    }

    fn trim(mut self) -> Dec {
        if self.m == 0 {
            return Dec { m: 0, e: 0 };
        }
        while self.m % 10 == 0 && self.e < 0 {
            self.m /= 10;
            self.e += 1;
        }
        self
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
        let e = a.e.min(b.e);
        let sa = a.m.checked_mul(pow10(a.e - e)?)?;
        let sb = b.m.checked_mul(pow10(b.e - e)?)?;
        Some((sa, sb, e))
    }

    fn add(self, o: Dec) -> Option<Dec> {
        let (a, b, e) = Dec::align(self, o)?;
        Some(
            Dec {
                m: a.checked_add(b)?,
                e,
            }
            .trim(),
        )
    }

    fn sub(self, o: Dec) -> Option<Dec> {
        let (a, b, e) = Dec::align(self, o)?;
        Some(
            Dec {
                m: a.checked_sub(b)?,
                e,
            }
            .trim(),
        )
    }

    fn mul(self, o: Dec) -> Option<Dec> {
        Some(
            Dec {
                m: self.m.checked_mul(o.m)?,
                e: self.e.checked_add(o.e)?,
            }
            .trim(),
        )
    }

    pub(super) fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Rounds to an integer.
    pub(super) fn round(self, mode: Rounding) -> Result<i64, String> {
        let too_big = || "the result does not fit a 64-bit integer".to_string();
        if self.e >= 0 {
            let m = self
                .m
                .checked_mul(pow10(self.e).ok_or_else(too_big)?)
                .ok_or_else(too_big)?;
            return i64::try_from(m).map_err(|_| too_big());
        }
        let Some(p) = pow10(-self.e) else {
            // More than 38 fractional digits: the integer part is 0.
            return match mode {
                Rounding::Exact if self.m != 0 => Err("the value has a fraction".into()),
                Rounding::Floor if self.m < 0 => Ok(-1),
                Rounding::Ceil if self.m > 0 => Ok(1),
                _ => Ok(0),
            };
        };
        let q = self.m / p; // toward zero
        let r = self.m % p;
        if r == 0 {
            return i64::try_from(q).map_err(|_| too_big());
        }
        let twice = r.unsigned_abs().saturating_mul(2);
        let half = twice.cmp(&p.unsigned_abs());
        let away = if self.m < 0 { -1 } else { 1 };
        let q = match mode {
            Rounding::Exact => return Err("the value has a fraction (set `round`)".into()),
            Rounding::Down => q,
            Rounding::Floor => {
                if self.m < 0 {
                    q - 1
                } else {
                    q
                }
            }
            Rounding::Ceil => {
                if self.m > 0 {
                    q + 1
                } else {
                    q
                }
            }
            Rounding::HalfUp => match half {
                std::cmp::Ordering::Less => q,
                _ => q + away,
            },
            Rounding::HalfEven => match half {
                std::cmp::Ordering::Less => q,
                std::cmp::Ordering::Greater => q + away,
                std::cmp::Ordering::Equal => {
                    if q % 2 == 0 {
                        q
                    } else {
                        q + away
                    }
                }
            },
        };
        i64::try_from(q).map_err(|_| too_big())
    }
}

pub(super) const MAX_DEC_EXP: i32 = 6200;

pub(super) fn pow10(n: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(n).ok()?)
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.m < 0;
        let digits = self.m.unsigned_abs().to_string();
        let sign = if neg { "-" } else { "" };
        if self.e >= 0 {
            let zeros = "0".repeat(usize::try_from(self.e).unwrap_or(0));
            return write!(f, "{sign}{digits}{zeros}");
        }
        let frac = usize::try_from(-self.e).unwrap_or(0);
        if digits.len() > frac {
            let (a, b) = digits.split_at(digits.len() - frac);
            write!(f, "{sign}{a}.{b}")
        } else {
            let zeros = "0".repeat(frac - digits.len());
            write!(f, "{sign}0.{zeros}{digits}")
        }
    }
}

/// A number read from a document.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    /// Exact (from an integer, a decimal or a double's shortest form); `fractional` when it
    /// came from a double or decimal (so the natural result type is a double).
    Exact(Dec, bool),
    Float(f64),
}

impl Num {
    pub(super) fn from_value(v: &Value) -> Result<Num, String> {
        match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Num::Exact(Dec::int(i), false))
                } else {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    Ok(Dec::from_f64(x).map_or(Num::Float(x), |d| Num::Exact(d, true)))
                }
            }
            Value::Object(m) => match wrapper(m) {
                Some(("$numberDecimal", Value::String(s))) => Dec::parse(s)
                    .map(|d| Num::Exact(d, true))
                    .ok_or_else(|| "the decimal is not finite or too long".to_string()),
                _ => Err(format!("a {} is not a number", kind(v))),
            },
            other => Err(format!("a {} is not a number", kind(other))),
        }
    }

    pub(super) fn to_f64(self) -> f64 {
        match self {
            Num::Exact(d, _) => d.to_f64(),
            Num::Float(x) => x,
        }
    }

    pub(super) fn fractional(self) -> bool {
        match self {
            Num::Exact(_, f) => f,
            Num::Float(_) => true,
        }
    }

    pub(super) fn binop(self, op: u8, o: Num) -> Result<Num, String> {
        let frac = self.fractional() || o.fractional();
        if let (Num::Exact(a, _), Num::Exact(b, _)) = (self, o) {
            let r = match op {
                b'+' => a.add(b),
                b'-' => a.sub(b),
                b'*' => a.mul(b),
                _ => None,
            };
            if let Some(r) = r {
                return Ok(Num::Exact(r, frac));
            }
        }
        let (a, b) = (self.to_f64(), o.to_f64());
        let r = match op {
            b'+' => a + b,
            b'-' => a - b,
            b'*' => a * b,
            _ => {
                if b == 0.0 {
                    return Err("division by zero".into());
                }
                a / b
            }
        };
        if !r.is_finite() {
            return Err("the result is not a finite number".into());
        }
        Ok(Dec::from_f64(r).map_or(Num::Float(r), |d| Num::Exact(d, true)))
    }

    /// The value as `to` (`None`: int when nothing fractional was involved, else double).
    pub(super) fn into_value(self, to: Option<TypeName>, round: Rounding) -> Result<Value, String> {
        let to = to.unwrap_or(if self.fractional() {
            TypeName::Double
        } else {
            TypeName::Int
        });
        match (to, self) {
            (TypeName::Int, Num::Exact(d, _)) => Ok(Value::from(d.round(round)?)),
            (TypeName::Int, Num::Float(x)) => {
                let d = Dec::from_f64(x).ok_or("the result is not a finite number")?;
                Ok(Value::from(d.round(round)?))
            }
            (TypeName::Double, n) => double_value(n.to_f64()),
            (TypeName::Decimal, Num::Exact(d, _)) => decimal_value(&d.to_string()),
            (TypeName::Decimal, Num::Float(x)) => decimal_value(&format!("{x}")),
            (TypeName::String, Num::Exact(d, _)) => Ok(Value::String(d.to_string())),
            (TypeName::String, Num::Float(x)) => Ok(Value::String(format!("{x}"))),
            (TypeName::Date, n) => {
                let ms = match n {
                    Num::Exact(d, _) => d.round(round)?,
                    Num::Float(x) => Dec::from_f64(x)
                        .ok_or("the result is not a finite number")?
                        .round(round)?,
                };
                date_value(ms)
            }
        }
    }
}

pub(super) fn parse_number_text(s: &str) -> Option<Num> {
    if let Some(d) = Dec::parse(s) {
        return Some(Num::Exact(d, s.contains(['.', 'e', 'E'])));
    }
    // Syntactically a number but too long for an exact decimal.
    let looks_numeric = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E'));
    let x: f64 = s
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && looks_numeric)?;
    Some(Num::Float(x))
}
