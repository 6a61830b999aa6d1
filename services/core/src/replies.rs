//! Which of one frame's requests need an answer: repeated query-awareness and sync-step-1
//! messages of one frame are answered once, so a frame of millions of them (a 32 MiB frame of
//! `0x03` bytes holds 33 million) costs one reply, not millions.
//!
//! The first sync step 1 of a frame is answered at once (the client waits for it). A later one
//! needs no answer of its own when its state vector covers what was answered already: the
//! client got everything beyond that, and every update since reaches it as a broadcast (the
//! sender included). Otherwise it lowers the *floor* — the per-client minimum of the state
//! vectors seen — and one more sync step 2, from the floor, is sent when the frame is done:
//! at most two replies per frame, whatever it holds.

use yrs::StateVector;

/// The requests of one frame that still need answering.
#[derive(Debug, Default)]
pub struct FrameReplies {
    /// The per-client minimum of the state vectors answered or to be answered.
    floor: Option<StateVector>,
    /// Whether `floor` went lower than what was answered.
    pending: bool,
    /// Whether the awareness query was answered.
    awareness_answered: bool,
}

impl FrameReplies {
    /// A sync step 1 with `sv`: returns the state vector to answer now, if any.
    pub fn step1(&mut self, sv: StateVector) -> Option<&StateVector> {
        match &mut self.floor {
            None => {
                self.floor = Some(sv);
                self.floor.as_ref()
            }
            Some(floor) => {
                if !covers(&sv, floor) {
                    *floor = meet(floor, &sv);
                    self.pending = true;
                }
                None
            }
        }
    }

    /// A query-awareness message: whether to answer it (only the first of a frame).
    pub fn query_awareness(&mut self) -> bool {
        !std::mem::replace(&mut self.awareness_answered, true)
    }

    /// The frame is done: the state vector of the one more sync step 2 it needs, if any.
    pub fn finish(self) -> Option<StateVector> {
        self.floor.filter(|_| self.pending)
    }
}

/// Whether `sv` has at least what `floor` has, for every client.
fn covers(sv: &StateVector, floor: &StateVector) -> bool {
    floor.iter().all(|(client, clock)| sv.get(client) >= *clock)
}

/// The per-client minimum of two state vectors (a client missing from one has clock 0).
fn meet(a: &StateVector, b: &StateVector) -> StateVector {
    let mut out = StateVector::default();
    for (client, clock) in a.iter() {
        let clock = (*clock).min(b.get(client));
        if clock > 0 {
            out.set_max(*client, clock);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use yrs::block::ClientID;

    fn sv(clocks: &[(u64, u32)]) -> StateVector {
        let mut sv = StateVector::default();
        for &(client, clock) in clocks {
            sv.set_max(ClientID::new(client), clock);
        }
        sv
    }

    #[test]
    fn the_first_of_each_is_answered_at_once_and_repeats_not_at_all() {
        let mut replies = FrameReplies::default();
        assert!(replies.query_awareness());
        assert!(!replies.query_awareness());
        assert_eq!(replies.step1(sv(&[(1, 5)])), Some(&sv(&[(1, 5)])));
        for _ in 0..1000 {
            assert_eq!(replies.step1(sv(&[(1, 5)])), None);
            assert_eq!(
                replies.step1(sv(&[(1, 9), (2, 1)])),
                None,
                "covers the first"
            );
        }
        assert_eq!(replies.finish(), None, "nothing more to send");
    }

    #[test]
    fn a_lower_state_vector_gets_one_more_answer_from_the_floor() {
        let mut replies = FrameReplies::default();
        replies.step1(sv(&[(1, 5), (2, 5)]));
        assert_eq!(replies.step1(sv(&[(1, 3), (2, 7)])), None);
        assert_eq!(replies.step1(sv(&[(2, 6), (3, 1)])), None);
        assert_eq!(replies.finish(), Some(sv(&[(2, 5)])));
    }

    proptest! {
        /// Every sync step 1 of a frame is covered: the state vector it was answered with
        /// (the first, or the floor at the end) is at most its own, for every client. Then
        /// what that answer held is everything the client lacked.
        #[test]
        fn every_step1_is_covered_by_an_answer(
            svs in proptest::collection::vec(
                proptest::collection::vec((0u64..4, 0u32..6), 0..4), 1..12)
        ) {
            let svs: Vec<StateVector> = svs.iter().map(|c| sv(c)).collect();
            let mut replies = FrameReplies::default();
            let mut answers = Vec::new();
            for s in &svs {
                if let Some(now) = replies.step1(s.clone()) {
                    answers.push(now.clone());
                }
            }
            answers.extend(replies.finish());
            prop_assert!(!answers.is_empty() && answers.len() <= 2);
            for s in &svs {
                prop_assert!(answers.iter().any(|a| covers(s, a)), "{s:?} not covered by {answers:?}");
            }
        }
    }
}
