//! Sharding functions: which shard owns a bigint key.
//!
//! `pg_bigint_hash` agrees with PostgreSQL's own placement for `PARTITION BY HASH (bigint)`:
//! the key goes to shard `r` exactly when PostgreSQL puts it in the partition with
//! `MODULUS <shards>, REMAINDER r`. PostgreSQL hashes the value with
//! `hashint8extended(key, HASH_PARTITION_SEED)` (Bob Jenkins' lookup3 over the folded 64-bit
//! value), combines column hashes with `hash_combine64` starting from 0, and takes the result
//! modulo the modulus. `sha1` is PgCat's: SHA-1 of the decimal text, the last 8 hex digits as
//! an integer, modulo the number of shards.

use sha1::{Digest, Sha1};

use crate::config::ShardingFunction;

/// PostgreSQL's HASH_PARTITION_SEED (src/include/catalog/partition.h).
const HASH_PARTITION_SEED: u64 = 0x7A5B_2236_7996_DCFD;

/// The shard (0-based) that owns `key` among `shards` shards.
pub fn shard_for(function: ShardingFunction, key: i64, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    match function {
        ShardingFunction::PgBigintHash => {
            (hash_combine64(0, hashint8extended(key, HASH_PARTITION_SEED)) % shards as u64) as usize
        }
        ShardingFunction::Sha1 => {
            let digest = Sha1::digest(key.to_string().as_bytes());
            let tail = u32::from_be_bytes([digest[16], digest[17], digest[18], digest[19]]);
            tail as usize % shards
        }
    }
}

/// PostgreSQL's `hashint8extended`: fold the 64-bit value to 32 bits (so that int8 and int4
/// values that are equal hash alike), then the seeded lookup3 hash.
pub fn hashint8extended(val: i64, seed: u64) -> u64 {
    let lohalf = val as u32;
    let hihalf = (val >> 32) as u32;
    let folded = lohalf ^ if val >= 0 { hihalf } else { !hihalf };
    hash_uint32_extended(folded, seed)
}

/// PostgreSQL's `hash_bytes_uint32_extended` (lookup3 with a 64-bit seed).
fn hash_uint32_extended(k: u32, seed: u64) -> u64 {
    let init = 0x9e37_79b9u32
        .wrapping_add(std::mem::size_of::<u32>() as u32)
        .wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    a = a.wrapping_add(k);
    finalize(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn finalize(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// PostgreSQL's `hash_combine64`.
fn hash_combine64(mut a: u64, b: u64) -> u64 {
    a ^= b
        .wrapping_add(0x49a0_f4dd_15e5_a8e3)
        .wrapping_add(a << 54)
        .wrapping_add(a >> 7);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SELECT k, hashint8extended(k, 8816678312871386365)` on PostgreSQL 15.
    const FROM_POSTGRES: &[(i64, i64)] = &[
        (0, -4403592609991167795),
        (1, 5968994663651403477),
        (-1, -5017072347659237694),
        (2, -6784076462669891433),
        (42, 7363975540656877951),
        (1000000, 4098724818956435368),
        (i64::MIN, -6050265599104649060),
        (i64::MAX, 4938542303000433043),
        (123456789012, 1825551100719034884),
    ];

    #[test]
    fn hashint8extended_matches_postgres() {
        for &(k, h) in FROM_POSTGRES {
            assert_eq!(
                hashint8extended(k, HASH_PARTITION_SEED) as i64,
                h,
                "key {k}"
            );
        }
    }

    #[test]
    fn placement_matches_a_postgres_hash_partitioned_table() {
        // CREATE TABLE hp (id bigint) PARTITION BY HASH (id), MODULUS 3, and tableoid of each.
        for (k, r) in [
            (i64::MIN, 1),
            (-1, 2),
            (0, 2),
            (1, 2),
            (2, 0),
            (42, 0),
            (1000000, 0),
            (123456789012, 2),
            (i64::MAX, 0),
        ] {
            assert_eq!(
                shard_for(ShardingFunction::PgBigintHash, k, 3),
                r,
                "key {k}"
            );
        }
    }

    #[test]
    fn sha1_takes_the_last_eight_hex_digits_of_the_decimal_text() {
        // sha1("1234") = 7110eda4d09e062aa5e4a390b0a572ac0d2c0220; 0x0d2c0220 = 220987936.
        assert_eq!(shard_for(ShardingFunction::Sha1, 1234, 7), 220_987_936 % 7);
        assert_eq!(shard_for(ShardingFunction::Sha1, 1234, 1), 0);
    }
}
