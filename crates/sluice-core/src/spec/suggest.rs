//! "Did you mean …?": the closest known name to a misspelt one.

/// The candidate closest to `name` by edit distance (with transpositions),
/// if it is close enough to be a likely typo: at most one edit for short
/// names, about one in three for longer ones. Case differences are cheap.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Long strings are not typos of a name, and the distance is quadratic.
    const MAX_LEN: usize = 64;
    if name.is_empty() || name.len() > MAX_LEN {
        return None;
    }
    let limit = (name.chars().count() / 3).max(1);
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .filter(|candidate| candidate.len() <= MAX_LEN && *candidate != name)
        .filter_map(|candidate| {
            let distance = if candidate.to_lowercase() == lower {
                0
            } else {
                distance(&lower, &candidate.to_lowercase())
            };
            (distance <= limit).then_some((distance, candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The names joined for a hint, when there are few enough to be worth
/// reading.
pub(crate) fn short_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    const MAX_NAMES: usize = 20;
    let names: Vec<&str> = names.into_iter().take(MAX_NAMES + 1).collect();
    (names.len() <= MAX_NAMES).then(|| names.join(", "))
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours each cost one.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        rows[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        rows[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[at(i - 1, j)] + 1)
                .min(rows[at(i, j - 1)] + 1)
                .min(rows[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[at(i - 2, j - 2)] + 1);
            }
            rows[at(i, j)] = best;
        }
    }
    rows[at(a.len(), b.len())]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_likely_typos_only() {
        let keys = ["needs", "run", "script", "pipeline", "timeout"];
        assert_eq!(closest("neds", keys), Some("needs"));
        assert_eq!(closest("nedes", keys), Some("needs"));
        assert_eq!(closest("timout", keys), Some("timeout"));
        assert_eq!(closest("Run", keys), Some("run"));
        assert_eq!(closest("banana", keys), None);
    }
}
