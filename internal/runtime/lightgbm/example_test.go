package lightgbm_test

import (
	"context"
	"fmt"

	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/lightgbm"
	"github.com/ferryserve/ferry/internal/tensor"
)

// A binary model with one split: age <= 30 scores -1, otherwise +1.
const tiny = `tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=binary sigmoid:1
feature_names=age income

Tree=0
num_leaves=2
num_cat=0
split_feature=0
threshold=30
decision_type=2
left_child=-1
right_child=-2
leaf_value=-1 1
shrinkage=1

end of trees
`

func Example() {
	m, err := lightgbm.Parse([]byte(tiny), lightgbm.Options{})
	if err != nil {
		panic(err)
	}
	in := &tensor.Tensor{Name: "input-0", Datatype: tensor.FP64, Shape: []int64{2, 2}, Data: []float64{25, 1000, 40, 2000}}
	res, err := m.Predict(context.Background(), &runtime.Request{
		Inputs:  []*tensor.Tensor{in},
		Outputs: []string{"predict", "raw_score"},
	})
	if err != nil {
		panic(err)
	}
	for _, o := range res.Outputs {
		fmt.Printf("%s %v %.4f\n", o.Name, o.Shape, o.Data)
	}
	fmt.Println(m.Metadata().Properties["feature_names"])
	// Output:
	// predict [2] [0.2689 0.7311]
	// raw_score [2] [-1.0000 1.0000]
	// age,income
}
