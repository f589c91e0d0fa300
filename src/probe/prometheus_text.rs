//! Reading the Prometheus text exposition format (what Envoy serves on
//! `/stats/prometheus`): one sample per line, `name{label="value",...} value
//! [timestamp]`; `#` lines are comments.

use std::collections::BTreeMap;

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The sample as a line again (labels sorted), for evidence.
    pub fn show(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}{{{}}} {}", self.name, labels.join(","), self.value)
    }
}

/// Parses an exposition; a line that is not a sample is an error naming it.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
        .map(|(i, line)| {
            parse_line(line.trim()).map_err(|e| format!("line {}: {e}: {line}", i + 1))
        })
        .collect()
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remainder) = parse_labels(after)?;
        labels = parsed;
        rest = remainder;
    }
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or("no value after the labels")?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .map_err(|_| format!("value `{v}` is not a number"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `key="value",...}` (escapes `\\`, `\"`, `\n`); returns the labels
/// and what follows the closing brace.
fn parse_labels(mut text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = text.find('=').ok_or("a label without `=`")?;
        let key = text[..eq].trim().to_string();
        let after = text[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key}: value is not quoted"))?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {key}: unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {key}: unterminated escape")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(key, value);
        text = after[end + 1..].trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples_labels_and_escapes() {
        let text = "# TYPE istio_requests_total counter\n\
            istio_requests_total{reporter=\"destination\",path=\"a\\\"b\\\\c\"} 7\n\
            envoy_up 1 1700000000000\n\
            bucket{le=\"+Inf\",} +Inf\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "istio_requests_total");
        assert_eq!(samples[0].labels["reporter"], "destination");
        assert_eq!(samples[0].labels["path"], "a\"b\\c");
        assert_eq!(samples[0].value, 7.0);
        assert_eq!(samples[1].value, 1.0);
        assert!(samples[1].labels.is_empty());
        assert_eq!(samples[2].labels["le"], "+Inf");
        assert!(samples[2].value.is_infinite());
    }

    #[test]
    fn names_the_line_that_is_not_a_sample() {
        let err = parse("ok 1\nbroken{a=\"x\" 1\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = parse("name{a=x} 1").unwrap_err();
        assert!(err.contains("not quoted"), "{err}");
        let err = parse("name words").unwrap_err();
        assert!(err.contains("not a number"), "{err}");
    }
}
