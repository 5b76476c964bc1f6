//! Cutting text that came from elsewhere (a machine, a client, a config file) to a bound.

/// The largest index `<= index` (and `<= text.len()`) that starts a character: where a cut
/// at `index` bytes may fall. (`str::floor_char_boundary` is newer than the workspace's
/// minimum Rust, 1.89.)
pub(crate) fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut cut = index.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::floor_char_boundary;

    #[test]
    fn a_cut_never_splits_a_character() {
        let text = "aé€";
        let cuts: Vec<usize> = (0..=8).map(|i| floor_char_boundary(text, i)).collect();
        assert_eq!(cuts, [0, 1, 1, 3, 3, 3, 6, 6, 6]);
    }
}
