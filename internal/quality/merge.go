package quality

import (
	"errors"
	"fmt"
)

// Fan-out: behind an ingress, the prediction an id names was journaled by
// one replica of one revision, and the ingress cannot tell which (a
// client-chosen id carries no revision). It sends the feedback to every
// replica and merges their answers with MergeFeedback: each record's
// outcome is the most informative any replica gave, so a record counts as
// unknown only when no replica knew its id.

// rank orders outcomes from most to least informative.
func rank(o Outcome) int {
	switch o {
	case Joined:
		return 0
	case Duplicate:
		return 1
	case Invalid:
		return 2
	case Expired:
		return 3
	}
	return 4 // Unknown
}

// MergeFeedback merges the answers of several replicas to one feedback
// body. Every answer must list the same records in the same order.
func MergeFeedback(answers []FeedbackResponse) (FeedbackResponse, error) {
	if len(answers) == 0 {
		return FeedbackResponse{}, errors.New("merge feedback: no answers")
	}
	out := FeedbackResponse{Model: answers[0].Model, Outcomes: make([]Result, len(answers[0].Outcomes))}
	copy(out.Outcomes, answers[0].Outcomes)
	for _, a := range answers[1:] {
		if len(a.Outcomes) != len(out.Outcomes) {
			return FeedbackResponse{}, fmt.Errorf("merge feedback: answers of %d and %d records", len(out.Outcomes), len(a.Outcomes))
		}
		for i, r := range a.Outcomes {
			if r.ID != out.Outcomes[i].ID {
				return FeedbackResponse{}, fmt.Errorf("merge feedback: record %d is %q in one answer and %q in another", i, out.Outcomes[i].ID, r.ID)
			}
			if rank(r.Outcome) < rank(out.Outcomes[i].Outcome) {
				out.Outcomes[i] = r
			}
		}
	}
	for _, r := range out.Outcomes {
		out.Counts.add(r.Outcome)
	}
	return out, nil
}

// CountsOf counts the outcomes of a feedback answer.
func CountsOf(res []Result) Counts {
	var c Counts
	for _, r := range res {
		c.add(r.Outcome)
	}
	return c
}
