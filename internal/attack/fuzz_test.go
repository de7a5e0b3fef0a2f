package attack

import "testing"

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"instances": [[5.1, 3.5, 1.4, 0.2], [0]]}`,
		`{"instances": [[[5.1, 3.5, 1.4, 0.2], [6, 3, 4, 1]], [0, 1]]}`,
		`{"instances": [[[0, 1], [1, 0]], [[0, 0, 1]]]}`,
		`{"instances": [[1, 2, 3]]}`,
		`{"instances": [[[1], [2, 3]], [0]]}`,
		`{"instances": [[], [0]]}`,
		`{"instances": [1, 2, 3]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b, 1<<12)
		if err != nil {
			return
		}
		if len(r.Inputs) != len(r.Labels) || len(r.Inputs) == 0 {
			t.Fatalf("%d inputs, %d labels", len(r.Inputs), len(r.Labels))
		}
		size := 1
		for _, d := range r.Shape {
			size *= d
		}
		for _, in := range r.Inputs {
			if len(in) != size {
				t.Fatalf("input of %d values, shape %v", len(in), r.Shape)
			}
		}
		res := make([]Result, len(r.Inputs))
		for i := range res {
			res[i].Adversarial = r.Inputs[i]
		}
		_ = EncodeResponse(r, DefaultConfig(TypeSquareAttack), res)
	})
}
