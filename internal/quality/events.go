package quality

import (
	"encoding/json"

	"github.com/ferryserve/ferry/internal/reqlog"
)

// EventTypeFeedback is the CloudEvents type of a joined feedback record,
// beside the request logger's org.kubeflow.serving.inference.request and
// .response.
const EventTypeFeedback = "org.kubeflow.serving.feedback"

// FeedbackEvent is the data of the CloudEvent a joined feedback record
// becomes. Its ce-id is ID, the prediction's id, which is also the ce-id
// of the request and response events the request logger wrote for that
// prediction: an external system joins them on it.
type FeedbackEvent struct {
	ID    string `json:"id"`
	Model string `json:"model"`
	// Truth is the truth as the feedback sent it (a value, or an array
	// with one per row).
	Truth    json.RawMessage `json:"truth"`
	Outcome  Outcome         `json:"outcome"`
	Revision string          `json:"revision"`
}

// FeedbackEvents receives the joined records of each feedback request
// before its answer leaves (so a client that has its answer knows the
// events are kept, e.g. spooled). It must not fail the request: what it
// cannot keep it counts.
type FeedbackEvents interface {
	Feedback(evs []FeedbackEvent)
}

// LoggerEvents emits feedback through the request logger, as CloudEvents
// of type EventTypeFeedback with the logger's source and extensions.
func LoggerEvents(l *reqlog.Logger) FeedbackEvents { return loggerEvents{l} }

type loggerEvents struct{ l *reqlog.Logger }

func (e loggerEvents) Feedback(evs []FeedbackEvent) {
	out := make([]reqlog.Extra, 0, len(evs))
	for _, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			continue // Truth is JSON the feedback decoder accepted
		}
		out = append(out, reqlog.Extra{ID: ev.ID, Type: EventTypeFeedback, Data: data})
	}
	e.l.Emit(out...)
}

// feedbackEvents makes the events of the joined records of fb.
func feedbackEvents(model string, fb []Feedback, res []Result) []FeedbackEvent {
	var out []FeedbackEvent
	for i, r := range res {
		if r.Outcome != Joined {
			continue
		}
		out = append(out, FeedbackEvent{ID: r.ID, Model: model, Truth: truthJSON(fb[i]), Outcome: r.Outcome, Revision: r.Revision})
	}
	return out
}

// truthJSON is the truth as sent, or (for feedback not decoded from JSON)
// its values: numbers as numbers, labels as strings.
func truthJSON(f Feedback) json.RawMessage {
	if len(f.TruthJSON) > 0 {
		return f.TruthJSON
	}
	vals := make([]any, len(f.Truth))
	for i, t := range f.Truth {
		if t.Numeric {
			vals[i] = t.Value
		} else {
			vals[i] = t.Label
		}
	}
	b, _ := json.Marshal(vals)
	return b
}
