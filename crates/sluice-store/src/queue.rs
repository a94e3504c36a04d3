//! Queue control shared by the backends: where a moved block run lands and
//! which queue ranks change because of it.
//!
//! The claim order is priority (highest first), then `queue_rank`, then id.
//! A block run's rank is its queued time until an operator moves it. A move
//! never crosses priorities (that is what a priority is for): it reorders
//! the block runs of one priority band and hands the band's ranks out again
//! in the new order, so nothing outside the band changes place.

use sluice_core::ids::BlockRunId;

use crate::{Error, QueuePlace, Result};

/// A queued block run as the planner sees it, in claim order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub id: BlockRunId,
    pub priority: i64,
    pub rank: i64,
}

/// The new ranks after moving `moving` to `place` within `queue` (every
/// queued block run in claim order): only the slots whose rank changes.
pub(crate) fn plan_move(
    queue: &[Slot],
    moving: &BlockRunId,
    place: &QueuePlace,
) -> Result<Vec<(BlockRunId, i64)>> {
    let Some(from) = queue.iter().position(|slot| &slot.id == moving) else {
        return Err(Error::Conflict(format!(
            "block run `{moving}` is not queued: only queued block runs can be moved"
        )));
    };
    let priority = queue[from].priority;
    let mut order: Vec<&Slot> = queue.iter().collect();
    let slot = order.remove(from);
    // Where the block run may land without leaving its priority band.
    let band_start = order.iter().filter(|s| s.priority > priority).count();
    let band_end = order.iter().filter(|s| s.priority >= priority).count();
    let target = match place {
        QueuePlace::Position(position) => {
            let index = usize::try_from(position.saturating_sub(1)).unwrap_or(usize::MAX);
            index.clamp(band_start, band_end)
        }
        QueuePlace::Before(other) => {
            let Some(index) = order.iter().position(|s| &s.id == other) else {
                return Err(Error::Conflict(format!(
                    "block run `{other}` is not queued: a block run can only be moved before a queued one"
                )));
            };
            if order[index].priority != priority {
                return Err(Error::Conflict(format!(
                    "block run `{other}` has priority {}, `{moving}` has {priority}: a move keeps \
                     a block run among those of its priority; change its priority instead",
                    order[index].priority
                )));
            }
            index
        }
    };
    order.insert(target, slot);

    // The band's ranks, handed out again in the new order; each rank is
    // kept above the previous one so ties cannot reorder the band by id.
    let mut ranks: Vec<i64> = queue
        .iter()
        .filter(|s| s.priority == priority)
        .map(|s| s.rank)
        .collect();
    ranks.sort_unstable();
    let mut changes = Vec::new();
    let mut previous: Option<i64> = None;
    let band = order.iter().filter(|s| s.priority == priority);
    for (slot, rank) in band.zip(ranks) {
        let rank = match previous {
            Some(previous) if rank <= previous => previous + 1,
            _ => rank,
        };
        previous = Some(rank);
        if rank != slot.rank {
            changes.push((slot.id.clone(), rank));
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Vec<Slot> {
        [
            ("h", 5, 9),
            ("a", 0, 1),
            ("b", 0, 1),
            ("c", 0, 3),
            ("l", -1, 0),
        ]
        .into_iter()
        .map(|(id, priority, rank)| Slot {
            id: BlockRunId::from(id),
            priority,
            rank,
        })
        .collect()
    }

    fn apply(queue: &[Slot], changes: &[(BlockRunId, i64)]) -> Vec<String> {
        let mut queue = queue.to_vec();
        for (id, rank) in changes {
            queue.iter_mut().find(|s| &s.id == id).unwrap().rank = *rank;
        }
        queue.sort_by(|x, y| {
            (-x.priority, x.rank, x.id.as_str()).cmp(&(-y.priority, y.rank, y.id.as_str()))
        });
        queue.iter().map(|s| s.id.as_str().to_owned()).collect()
    }

    #[test]
    fn moves_stay_in_their_priority_band() {
        let queue = queue();
        let id = BlockRunId::from;
        let to_front = plan_move(&queue, &id("c"), &QueuePlace::Position(1)).unwrap();
        assert_eq!(apply(&queue, &to_front), ["h", "c", "a", "b", "l"]);
        let to_end = plan_move(&queue, &id("a"), &QueuePlace::Position(99)).unwrap();
        assert_eq!(apply(&queue, &to_end), ["h", "b", "c", "a", "l"]);
        let before = plan_move(&queue, &id("c"), &QueuePlace::Before(id("b"))).unwrap();
        assert_eq!(apply(&queue, &before), ["h", "a", "c", "b", "l"]);
        assert!(plan_move(&queue, &id("c"), &QueuePlace::Before(id("h"))).is_err());
        assert!(plan_move(&queue, &id("x"), &QueuePlace::Position(1)).is_err());
        // Staying in place only separates tied ranks, keeping the order.
        let in_place = plan_move(&queue, &id("c"), &QueuePlace::Position(4)).unwrap();
        assert_eq!(in_place, [(id("b"), 2)]);
        assert_eq!(apply(&queue, &in_place), ["h", "a", "b", "c", "l"]);
    }
}
