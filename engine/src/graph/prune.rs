//! RobustPrune (DiskANN, Subramanya et al. 2019), which with `alpha = 1` is
//! also the HNSW neighbour-selection heuristic (Malkov and Yashunin 2018).
//!
//! With `saturate`, a list that the rounds leave shorter than `max_degree`
//! is filled with the nearest candidates not yet selected (DiskANN's
//! `saturate_graph`): on disk a record has `R` slots whatever its degree,
//! so the extra edges cost no I/O and let one page read score more
//! neighbours.
//!
//! Selecting a candidate updates the occlusion of the candidates after it
//! only, as DiskANN's `occlude_list` does: one that an earlier round passed
//! over keeps the factor it had, and a later round at a larger alpha may
//! still take it. Updating every candidate (this module's rule until
//! session 17) cost about twice the distances per prune, and RobustPrune
//! took most of a build's distances (benches/RESULTS.md, session 17).
//!
//! Invariant: the output is a subset of the candidates, without repeats, at
//! most `max_degree` long; the diverse selection comes first, in candidate
//! order (ascending distance to the pruned node), then any saturation
//! edges, also in candidate order.

use super::Neighbour;
use crate::Metric;

/// Ratio of relaxation by which `alpha` grows between rounds; DiskANN's
/// value. Rounds at intermediate alphas fill the list with the most
/// diverse candidates first, before admitting long-range ones.
const ALPHA_STEP: f32 = 1.2;

/// The occlusion factor of candidate `c` by a selected node `s`, given
/// `d_pc = d(p, c)` and `d_sc = d(s, c)`: `c` is dropped in a round with
/// relaxation `alpha` when the factor exceeds `alpha`.
///
/// For l2 and cosine (non-negative distances) this is DiskANN's
/// `d(p, c) / d(s, c)`: `c` is dropped when `s` is `alpha` times closer to
/// it than `p` is. Inner-product "distances" are negated dot products and
/// may be negative, so the ratio would flip; DiskANN's MIPS rule is used
/// instead (`c` dropped when `<s, c> > alpha <p, c>`), which for
/// `<p, c> <= 0` falls back to the plain heuristic (`s` closer than `p`).
#[inline]
fn occlusion(metric: Metric, d_pc: f32, d_sc: f32) -> f32 {
    match metric {
        Metric::InnerProduct => {
            let (dot_pc, dot_sc) = (-d_pc, -d_sc);
            if dot_pc > 0.0 {
                dot_sc / dot_pc
            } else if dot_sc > dot_pc {
                f32::INFINITY
            } else {
                0.0
            }
        }
        _ => {
            if d_sc <= 0.0 {
                if d_pc <= 0.0 { 1.0 } else { f32::INFINITY }
            } else {
                d_pc / d_sc
            }
        }
    }
}

/// Marks a selected candidate in the factor scratch (factors are >= 0).
const SELECTED: f32 = -1.0;

/// The distances RobustPrune asks for: from the candidate just selected to
/// every candidate after it that may still be occluded, all at once, so
/// that an implementation can share the selected row's loads among them
/// (`Kernels::distances4`). Any `FnMut(a, b) -> distance` is one.
pub(crate) trait Between {
    /// Sets `out` to `d(s, id)` for each of `ids`, in order.
    fn distances(&mut self, s: u32, ids: &[u32], out: &mut Vec<f32>);
}

impl<F: FnMut(u32, u32) -> f32> Between for F {
    fn distances(&mut self, s: u32, ids: &[u32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(ids.iter().map(|&c| self(s, c)));
    }
}

/// Reusable buffers of [`robust_prune`], so that a prune allocates nothing.
#[derive(Debug, Default, Clone)]
pub(crate) struct PruneScratch {
    /// Per candidate: the largest occlusion factor so far, or `SELECTED`.
    factors: Vec<f32>,
    /// Positions of the candidates that a selection is compared with.
    targets: Vec<usize>,
    /// Their ids.
    ids: Vec<u32>,
    /// Their distances to the selected candidate.
    distances: Vec<f32>,
}

/// Selects at most `max_degree` of `candidates` (sorted ascending by
/// distance to the pruned node, without duplicates or the node itself)
/// into `out`. `between` gives distances between candidates.
/// `saturate` fills a short list with the nearest unselected candidates.
/// Returns the number of distances computed.
#[expect(
    clippy::too_many_arguments,
    reason = "internal kernel shared by the builders"
)]
pub(crate) fn robust_prune(
    metric: Metric,
    candidates: &[Neighbour],
    alpha: f32,
    max_degree: usize,
    saturate: bool,
    between: &mut impl Between,
    scratch: &mut PruneScratch,
    out: &mut Vec<u32>,
) -> usize {
    out.clear();
    if candidates.len() <= 1 || max_degree == 0 {
        out.extend(candidates.iter().take(max_degree).map(|c| c.id));
        return 0;
    }
    let PruneScratch {
        factors,
        targets,
        ids,
        distances,
    } = scratch;
    factors.clear();
    factors.resize(candidates.len(), 0.0);
    let mut computed = 0;
    let mut round = 1.0f32;
    'rounds: loop {
        for i in 0..candidates.len() {
            let f = factors[i];
            if f == SELECTED || f > round {
                continue;
            }
            factors[i] = SELECTED;
            let s = candidates[i].id;
            out.push(s);
            if out.len() >= max_degree {
                break 'rounds;
            }
            // Only the candidates after `s` (DiskANN's `occlude_list`):
            // one before it that a round passed over is not occluded again
            // by nodes selected later, which halves the distances.
            // Candidates already occluded beyond the final alpha can never
            // return; skip their distance computations.
            targets.clear();
            targets.extend(
                (i + 1..candidates.len())
                    .filter(|&j| factors[j] != SELECTED && factors[j] <= alpha),
            );
            ids.clear();
            ids.extend(targets.iter().map(|&j| candidates[j].id));
            between.distances(s, ids, distances);
            computed += ids.len();
            for (&j, &d_sc) in targets.iter().zip(distances.iter()) {
                let o = occlusion(metric, candidates[j].distance, d_sc);
                if o > factors[j] {
                    factors[j] = o;
                }
            }
        }
        if round >= alpha {
            break;
        }
        round = (round * ALPHA_STEP).min(alpha);
    }
    if saturate {
        for (i, c) in candidates.iter().enumerate() {
            if out.len() >= max_degree {
                break;
            }
            if factors[i] != SELECTED {
                out.push(c.id);
            }
        }
    }
    computed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: &[f32]) -> Vec<Neighbour> {
        points
            .iter()
            .enumerate()
            .map(|(i, &x)| Neighbour {
                id: i as u32,
                distance: x * x,
            })
            .collect()
    }

    #[test]
    fn alpha_one_keeps_only_unoccluded_directions() {
        // p at 0; candidates at 1, 2, 3 (one side) and -1.5 (other side).
        let xs = [1.0f32, -1.5, 2.0, 3.0];
        let mut cands = line(&xs);
        cands.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        let mut between = |a: u32, b: u32| (xs[a as usize] - xs[b as usize]).powi(2);
        let mut out = Vec::new();
        robust_prune(
            Metric::L2,
            &cands,
            1.0,
            8,
            false,
            &mut between,
            &mut PruneScratch::default(),
            &mut out,
        );
        assert_eq!(out, vec![0, 1]);
    }

    #[test]
    fn larger_alpha_keeps_more_edges_and_respects_degree() {
        let xs: Vec<f32> = (1..=20).map(|i| i as f32 * 0.1 + (i % 3) as f32).collect();
        let mut cands = line(&xs);
        cands.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        let mut between = |a: u32, b: u32| (xs[a as usize] - xs[b as usize]).powi(2);
        let mut one = Vec::new();
        robust_prune(
            Metric::L2,
            &cands,
            1.0,
            64,
            false,
            &mut between,
            &mut PruneScratch::default(),
            &mut one,
        );
        let mut two = Vec::new();
        robust_prune(
            Metric::L2,
            &cands,
            4.0,
            64,
            false,
            &mut between,
            &mut PruneScratch::default(),
            &mut two,
        );
        assert!(two.len() > one.len(), "{one:?} vs {two:?}");
        let mut three = Vec::new();
        robust_prune(
            Metric::L2,
            &cands,
            4.0,
            3,
            false,
            &mut between,
            &mut PruneScratch::default(),
            &mut three,
        );
        assert_eq!(three.len(), 3);
        assert_eq!(three[0], cands[0].id);
    }

    /// DiskANN's rule: a candidate passed over in the first round is not
    /// occluded again by one selected after it, so the second round takes it.
    #[test]
    fn later_selections_do_not_occlude_earlier_candidates() {
        // Distances to the pruned node: a 1.0, b 2.2, c 3.0. a occludes b by
        // a factor of 1.1 (dropped at alpha 1, kept at 1.2); a does not
        // occlude c; c would occlude b by 2.2 if it were asked.
        let cands =
            [(0u32, 1.0f32), (1, 2.2), (2, 3.0)].map(|(id, distance)| Neighbour { id, distance });
        let mut between = |a: u32, b: u32| match (a.min(b), a.max(b)) {
            (0, 1) => 2.0,
            (0, 2) => 4.0,
            _ => 1.0,
        };
        let mut out = Vec::new();
        robust_prune(
            Metric::L2,
            &cands,
            1.2,
            8,
            false,
            &mut between,
            &mut PruneScratch::default(),
            &mut out,
        );
        assert_eq!(out, vec![0, 2, 1]);
    }

    #[test]
    fn saturation_fills_to_the_degree_with_the_nearest_rest() {
        let xs = [1.0f32, -1.5, 2.0, 3.0, 4.0];
        let mut cands = line(&xs);
        cands.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        let mut between = |a: u32, b: u32| (xs[a as usize] - xs[b as usize]).powi(2);
        let mut out = Vec::new();
        let mut run = |degree: usize, out: &mut Vec<u32>| {
            robust_prune(
                Metric::L2,
                &cands,
                1.0,
                degree,
                true,
                &mut between,
                &mut PruneScratch::default(),
                out,
            )
        };
        run(4, &mut out);
        // The diverse pair first, then the nearest of the occluded rest.
        assert_eq!(out, vec![0, 1, 2, 3]);
        run(16, &mut out);
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        run(1, &mut out);
        assert_eq!(out, vec![0]);
    }
}
