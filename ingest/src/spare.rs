//! Vectors of finished write requests, kept for the next requests.
//!
//! A request of ten thousand points needs a few megabytes of vectors: its body, its batch's
//! rows, tags and fields, the sorted copy of its rows. Fresh from the allocator, each of those
//! was fresh pages, which the kernel zeroes when they are first touched (through transparent
//! huge pages, two megabytes at a time): on a fresh server about a tenth of ingest CPU. A vector
//! taken from a [`Shelf`] is already mapped and likely still in cache.
//!
//! Bounded: a shelf keeps at most [`PER_SHELF`] vectors, none above [`MAX_EACH`] bytes, and all
//! shelves together at most [`MAX_TOTAL`] bytes. A vector the shelves have no room for is freed
//! as usual, so the worst case is the allocator's own behaviour.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Vectors kept per shelf: a few requests in flight, each with a couple of vectors of a kind.
pub const PER_SHELF: usize = 8;
/// Largest vector kept, in bytes of capacity (a request of about 30,000 line-protocol lines).
pub const MAX_EACH: usize = 4 << 20;
/// Bytes of capacity kept over all shelves.
pub const MAX_TOTAL: usize = 48 << 20;
/// Smallest vector worth keeping, in bytes of capacity (small ones come cheap from the
/// allocator, which reuses small blocks well).
const MIN_EACH: usize = 64 << 10;

/// Capacity bytes on all shelves now.
static SHELVED: AtomicUsize = AtomicUsize::new(0);

/// Spare vectors of one element type.
#[derive(Debug)]
pub struct Shelf<T> {
    spares: Mutex<Vec<Vec<T>>>,
}

impl<T: Copy> Shelf<T> {
    /// An empty shelf (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            spares: Mutex::new(Vec::new()),
        }
    }

    /// An empty vector with room for at least `capacity` elements: the smallest spare that
    /// has it, else a new one.
    pub fn take(&self, capacity: usize) -> Vec<T> {
        if capacity.saturating_mul(std::mem::size_of::<T>()) < MIN_EACH / 4 {
            // A small batch (a test, one OTLP point): not worth a big spare.
            return Vec::with_capacity(capacity);
        }
        let found = {
            let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
            let best = spares
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= capacity)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            best.map(|i| spares.swap_remove(i))
        };
        match found {
            Some(v) => {
                SHELVED.fetch_sub(bytes_of(&v), Ordering::Relaxed);
                v
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `v` for a later [`Shelf::take`] if there is room; frees it otherwise.
    pub fn put(&self, mut v: Vec<T>) {
        let bytes = bytes_of(&v);
        if !(MIN_EACH..=MAX_EACH).contains(&bytes) {
            return;
        }
        if SHELVED.fetch_add(bytes, Ordering::Relaxed) + bytes > MAX_TOTAL {
            SHELVED.fetch_sub(bytes, Ordering::Relaxed);
            return;
        }
        v.clear();
        let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
        if spares.len() < PER_SHELF {
            spares.push(v);
        } else {
            drop(spares);
            SHELVED.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Vectors on the shelf now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.spares.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the shelf is empty.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Copy> Default for Shelf<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Capacity of `v` in bytes.
fn bytes_of<T>(v: &Vec<T>) -> usize {
    v.capacity().saturating_mul(std::mem::size_of::<T>())
}

/// Byte buffers: request bodies, decompressed bodies, a batch's added text.
pub static BYTES: Shelf<u8> = Shelf::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_vector_comes_back_empty_with_its_memory() {
        let shelf: Shelf<u64> = Shelf::new();
        let mut v: Vec<u64> = Vec::with_capacity(100_000);
        v.extend(0..1000);
        let at = v.as_ptr();
        shelf.put(v);
        assert_eq!(shelf.len(), 1);
        let again = shelf.take(50_000);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same allocation is reused");
        assert!(again.capacity() >= 100_000);
        assert!(shelf.is_empty());
        // Nothing fits a larger request: a new vector.
        shelf.put(again);
        let big = shelf.take(200_000);
        assert!(big.capacity() >= 200_000);
        assert_eq!(shelf.len(), 1);
    }

    #[test]
    fn the_smallest_fitting_spare_is_taken() {
        let shelf: Shelf<u8> = Shelf::new();
        shelf.put(Vec::with_capacity(3 << 20));
        shelf.put(Vec::with_capacity(1 << 20));
        shelf.put(Vec::with_capacity(2 << 20));
        let v = shelf.take(1_500_000);
        assert!(v.capacity() >= 2 << 20 && v.capacity() < 3 << 20);
        assert_eq!(shelf.len(), 2);
    }

    #[test]
    fn shelves_are_bounded() {
        let shelf: Shelf<u8> = Shelf::new();
        // Too small and too large are freed, not kept.
        shelf.put(Vec::with_capacity(1024));
        shelf.put(Vec::with_capacity(MAX_EACH + 1));
        assert!(shelf.is_empty());
        for _ in 0..PER_SHELF + 3 {
            shelf.put(Vec::with_capacity(MIN_EACH));
        }
        assert_eq!(shelf.len(), PER_SHELF);
    }
}
