//! "Did you mean ...?" for misspelt field names, enum values and references.

/// The option closest to `input` by edit distance, if it is close enough to
/// be a likely typo: at most one edit for short words, about a third of the
/// length for longer ones. Ties go to the earlier option.
pub(crate) fn closest<'a>(
    input: &str,
    options: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    let limit = (input.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for option in options {
        let d = distance(&input, &option.to_ascii_lowercase());
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, option));
        }
    }
    best.map(|(_, option)| option)
}

/// ` (did you mean "x"?)`, or nothing.
pub(crate) fn hint<'a>(input: &str, options: impl IntoIterator<Item = &'a str>) -> String {
    closest(input, options).map_or_else(String::new, |s| format!(" (did you mean {s:?}?)"))
}

/// Levenshtein distance over characters. Inputs are config words, so the
/// quadratic cost is negligible; very long inputs are cut off to keep it so.
fn distance(a: &str, b: &str) -> usize {
    const MAX: usize = 64;
    let a: Vec<char> = a.chars().take(MAX).collect();
    let b: Vec<char> = b.chars().take(MAX).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_typos_are_suggested_and_far_ones_are_not() {
        let fields = ["address", "weight"];
        assert_eq!(closest("wieght", fields), Some("weight"));
        assert_eq!(closest("Adress", fields), Some("address"));
        assert_eq!(closest("port", fields), None);
        assert_eq!(
            hint("userz", ["users", "billing"]),
            " (did you mean \"users\"?)"
        );
        assert_eq!(hint("zzz", ["users"]), "");
    }
}
