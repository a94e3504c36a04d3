//! The block DAG: topological order, cycles, and upstream and downstream
//! closures. Everything here is iterative, so a chain of thousands of blocks
//! cannot overflow the stack.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use super::Pipeline;

/// Which way to follow `needs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    Upstream,
    Downstream,
}

/// Block indices in topological order, ties broken by index (file order);
/// or, when there are cycles, each cycle once, as indices where each one
/// needs the next and the last needs the first. `needs[i]` are the direct
/// upstreams of block `i`.
pub(super) fn topological_order(needs: &[Vec<usize>]) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    let count = needs.len();
    let mut waiting_on: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (block, upstreams) in needs.iter().enumerate() {
        for &upstream in upstreams {
            downstream[upstream].push(block);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..count)
        .filter(|&block| waiting_on[block] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse(block)) = ready.pop() {
        order.push(block);
        for &next in &downstream[block] {
            waiting_on[next] -= 1;
            if waiting_on[next] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    if order.len() == count {
        return Ok(order);
    }
    Err(cycles(needs, &waiting_on))
}

/// Finds the cycles among the blocks left waiting by the topological sort.
/// Each of them waits on another one that is also left, so walking `needs`
/// from any of them must come back to a block already seen on the walk.
fn cycles(needs: &[Vec<usize>], waiting_on: &[usize]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        No,
        OnWalk(usize),
        Done,
    }
    let mut seen = vec![Seen::No; needs.len()];
    let mut found = Vec::new();
    for start in 0..needs.len() {
        if waiting_on[start] == 0 || seen[start] != Seen::No {
            continue;
        }
        let mut walk = Vec::new();
        let mut current = start;
        loop {
            match seen[current] {
                Seen::Done => break,
                Seen::OnWalk(at) => {
                    let mut cycle = walk[at..].to_vec();
                    // Start the cycle at the block written first.
                    if let Some(first) = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, block)| **block)
                        .map(|(index, _)| index)
                    {
                        cycle.rotate_left(first);
                    }
                    found.push(cycle);
                    break;
                }
                Seen::No => {
                    seen[current] = Seen::OnWalk(walk.len());
                    walk.push(current);
                    let next = needs[current]
                        .iter()
                        .copied()
                        .find(|&upstream| waiting_on[upstream] > 0 && upstream != current);
                    match next {
                        Some(next) => current = next,
                        None => break,
                    }
                }
            }
        }
        for block in walk {
            seen[block] = Seen::Done;
        }
    }
    found
}

/// Which blocks are upstream of `block`, directly or not, by index.
pub(super) fn upstream_set(needs: &[Vec<usize>], block: usize) -> Vec<bool> {
    let mut upstream = vec![false; needs.len()];
    let mut stack = needs[block].clone();
    while let Some(current) = stack.pop() {
        if !std::mem::replace(&mut upstream[current], true) {
            stack.extend(needs[current].iter().copied());
        }
    }
    upstream
}

/// The blocks reachable from `id` in `direction`, without `id` itself.
pub(super) fn closure(pipeline: &Pipeline, id: &str, direction: Direction) -> BTreeSet<String> {
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for block in &pipeline.blocks {
        for need in &block.needs {
            match direction {
                Direction::Upstream => edges.entry(&block.id).or_default().push(need),
                Direction::Downstream => edges.entry(need).or_default().push(&block.id),
            }
        }
    }
    let mut result = BTreeSet::new();
    let mut stack = vec![id];
    while let Some(current) = stack.pop() {
        for &next in edges.get(current).into_iter().flatten() {
            if next != id && result.insert(next.to_owned()) {
                stack.push(next);
            }
        }
    }
    result
}
