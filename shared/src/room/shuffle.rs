//! The fair opening's shuffle: a seeded Feistel permutation of the pre-queue cohort's
//! arrival numbers (the module above says why; `lua/lib/room.lua` computes the same).

/// The six 16-bit round keys of a seed written as 24 hex digits (`None` otherwise).
pub fn round_keys(seed: &str) -> Option<[u64; 6]> {
    if seed.len() != 24 || !seed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut keys = [0u64; 6];
    for (i, k) in keys.iter_mut().enumerate() {
        *k = u64::from_str_radix(&seed[4 * i..4 * i + 4], 16).ok()?;
    }
    Some(keys)
}

/// A fresh seed: 24 random hex digits.
pub fn new_seed() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..24].to_owned()
}

/// One round function of the shuffle's Feistel network on half-width `h` bits: a
/// nonlinear mix of `x` and the round key, taken from the middle bits (every value stays
/// below 2^53, so `lua/room_claim.lua` computes it exactly in doubles).
fn round(x: u64, key: u64, h: u32) -> u64 {
    let v = x + key;
    ((v * v * 40_503 + key) >> 8) % (1 << h)
}

/// The shuffle over `0..2^(2h)`: six rounds of (L, R) → (R, L + F(R) mod 2^h).
fn feistel(x: u64, keys: &[u64; 6], h: u32) -> u64 {
    let m = 1u64 << h;
    let (mut l, mut r) = (x >> h, x % m);
    for k in keys {
        let next = (l + round(r, *k, h)) % m;
        l = r;
        r = next;
    }
    (l << h) | r
}

/// The position of arrival `n` (1-based) of a room whose cohort of `cohort` pre-queue
/// arrivals was shuffled with `keys`: a permutation of `1..=cohort` for the cohort
/// (cycle-walking the Feistel network down to the cohort's size), `n` itself after it.
pub fn position(keys: &[u64; 6], cohort: u64, n: u64) -> u64 {
    if n == 0 || n > cohort || cohort <= 1 {
        return n;
    }
    let bits = 64 - (cohort - 1).leading_zeros();
    let h = bits.div_ceil(2).max(1);
    let mut x = n - 1;
    loop {
        x = feistel(x, keys, h);
        if x < cohort {
            return x + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shuffle_is_a_permutation_of_the_cohort() {
        let keys = round_keys("0123456789abcdef01234567").expect("a seed");
        for cohort in [2u64, 3, 7, 100, 1000, 4097] {
            let mut seen = vec![false; cohort as usize + 1];
            for n in 1..=cohort {
                let p = position(&keys, cohort, n);
                assert!((1..=cohort).contains(&p), "{cohort}: {n} -> {p}");
                assert!(!seen[p as usize], "{cohort}: {p} twice");
                seen[p as usize] = true;
            }
        }
        assert_eq!(
            position(&keys, 10, 11),
            11,
            "after the cohort: the arrival order"
        );
        assert_eq!(round_keys("xyz"), None);
    }

    #[test]
    fn the_shuffle_does_not_follow_arrival() {
        // Spearman's rho of arrival and position over a cohort of 10,000.
        let keys = round_keys(&new_seed()).expect("a seed");
        let n = 10_000u64;
        let d2: f64 = (1..=n)
            .map(|i| {
                let d = i as f64 - position(&keys, n, i) as f64;
                d * d
            })
            .sum();
        let nf = n as f64;
        let rho = 1.0 - 6.0 * d2 / (nf * (nf * nf - 1.0));
        assert!(rho.abs() <= 0.03, "rho {rho}");
    }
}
