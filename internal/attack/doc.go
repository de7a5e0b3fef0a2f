// Package attack owns Ferry's adversarial-robustness explainer: the
// black-box evasion attacks of IBM's Adversarial Robustness Toolbox that
// KFServing's art-explainer serves (SquareAttack, and HopSkipJump, which
// KServe never shipped), written from the papers:
//
//   - SquareAttack (Andriushchenko et al., ECCV 2020): score-based random
//     search inside an L∞ or L2 ball of radius eps, one square (one subset
//     of features for tabular inputs) changed per step, kept when the
//     margin loss falls.
//   - HopSkipJump (Chen, Jordan and Wainwright, 2020): decision-based;
//     walks along the decision boundary with a gradient direction
//     estimated from labels only, shrinking the L2 or L∞ distance.
//
// Both see the model only through a Classifier (in practice a V1 or V2
// predictor server over HTTP), count every row they send as one query, and
// return examples that lie inside the configured norm ball and on which the
// predictor was asked once more for its answer. The HTTP side (handler.go)
// speaks KFServing's art-explainer contract: {"instances": [inputs,
// labels]} in, {"explanations": {"adversarial_example", "L2 error",
// "adversarial_prediction", "prediction"}} out.
package attack
