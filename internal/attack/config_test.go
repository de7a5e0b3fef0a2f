package attack

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	good := []struct {
		typ  string
		kv   map[string]string
		want func(c Config) bool
	}{
		{TypeSquareAttack, nil, func(c Config) bool {
			return c.Norm == NormInf && c.Eps == 0.3 && c.MaxIter == 1000 && c.PInit == 0.8 && c.NbRestarts == 1 && math.IsInf(c.ClipMin, -1)
		}},
		{TypeSquareAttack, map[string]string{"nb_classes": "10", "max_iter": "50", "eps": "0.1", "norm": "2", "p_init": "0.3", "nb_restarts": "2", "clip_values": "(0, 1)", "verbose": "true"}, func(c Config) bool {
			return c.NbClasses == 10 && c.MaxIter == 50 && c.Eps == 0.1 && c.Norm == NormL2 && c.PInit == 0.3 && c.NbRestarts == 2 && c.ClipMin == 0 && c.ClipMax == 1 && c.Verbose
		}},
		{TypeSquareAttack, map[string]string{"norm": "np.inf"}, func(c Config) bool { return c.Norm == NormInf }},
		{TypeHopSkipJump, nil, func(c Config) bool {
			return c.Norm == NormL2 && c.MaxIter == 50 && c.MaxEval == 10000 && c.InitEval == 100 && c.InitSize == 100 && c.Eps == 0
		}},
		{TypeHopSkipJump, map[string]string{"targeted": "false", "max_eval": "200", "init_eval": "20", "clip_min": "-1", "clip_max": "1"}, func(c Config) bool {
			return c.MaxEval == 200 && c.InitEval == 20 && c.ClipMin == -1 && c.ClipMax == 1
		}},
	}
	for _, g := range good {
		c, err := ParseConfig(g.typ, g.kv)
		if err != nil {
			t.Errorf("%s %v: %v", g.typ, g.kv, err)
			continue
		}
		if !g.want(c) {
			t.Errorf("%s %v: got %+v", g.typ, g.kv, c)
		}
	}
	bad := []struct {
		typ  string
		kv   map[string]string
		want string
	}{
		{"FastGradientMethod", nil, `type "FastGradientMethod": want one of SquareAttack, HopSkipJump`},
		{TypeSquareAttack, map[string]string{"max_samples": "3"}, `unknown key "max_samples" for SquareAttack`},
		{TypeSquareAttack, map[string]string{"max_eval": "3"}, `unknown key "max_eval" for SquareAttack`},
		{TypeSquareAttack, map[string]string{"loss": "x"}, "loss: ART takes a Python callable"},
		{TypeSquareAttack, map[string]string{"adv_criterion": "x"}, "adv_criterion: ART takes a Python callable"},
		{TypeHopSkipJump, map[string]string{"targeted": "true"}, "targeted: targeted attacks are not implemented"},
		{TypeSquareAttack, map[string]string{"eps": "0"}, "eps 0: SquareAttack needs a positive radius"},
		{TypeSquareAttack, map[string]string{"eps": "-1"}, "eps -1: want a finite number ≥ 0"},
		{TypeSquareAttack, map[string]string{"norm": "1"}, `norm "1": want inf or 2`},
		{TypeSquareAttack, map[string]string{"max_iter": "ten"}, `max_iter "ten": strconv.Atoi`},
		{TypeSquareAttack, map[string]string{"p_init": "1.5"}, "p_init 1.5: want 0 < p_init ≤ 1"},
		{TypeSquareAttack, map[string]string{"nb_classes": "1"}, "nb_classes 1"},
		{TypeSquareAttack, map[string]string{"clip_values": "1,0"}, "clip values [1, 0]: want min < max"},
		{TypeSquareAttack, map[string]string{"clip_values": "1"}, `clip_values "1": want min,max`},
		{TypeHopSkipJump, map[string]string{"init_eval": "20000"}, "want 1 ≤ init_eval ≤ max_eval"},
		{TypeHopSkipJump, map[string]string{"batch_size": "0"}, "batch_size 0: want at least 1"},
	}
	for _, b := range bad {
		_, err := ParseConfig(b.typ, b.kv)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s %v: got %v, want an ErrConfig containing %q", b.typ, b.kv, err, b.want)
		}
	}
}

func TestArgs(t *testing.T) {
	args, err := Args(TypeSquareAttack, map[string]string{"nb_classes": "10", "eps": "0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(args, " "); got != "SquareAttack --eps 0.1 --nb_classes 10" {
		t.Errorf("args %q", got)
	}
	if _, err := Args(TypeSquareAttack, map[string]string{"bogus": "1"}); err == nil {
		t.Error("an unknown key was accepted")
	}
}

func TestProjectStaysInBall(t *testing.T) {
	x := []float64{0.1, 1e8, -3.3, 0.7}
	for _, eps := range []float64{0.3, 1e-9, 7.1} {
		p := []float64{5, -5, 1e9, 0.7 + 1e-3}
		project(p, x, NormInf, eps, math.Inf(-1), math.Inf(1))
		if d := linf(p, x); d > eps {
			t.Errorf("Linf eps %v: distance %v", eps, d)
		}
		q := []float64{5, -5, 1e9, 0.7 + 1e-3}
		project(q, x, NormL2, eps, math.Inf(-1), math.Inf(1))
		if d := l2(q, x); d > eps {
			t.Errorf("L2 eps %v: distance %v", eps, d)
		}
	}
}

func TestPSchedule(t *testing.T) {
	if p := pSchedule(0.8, 0, 1000); p != 0.8 {
		t.Errorf("start %v", p)
	}
	if p := pSchedule(0.8, 999, 1000); math.Abs(p-0.8/512) > 1e-15 {
		t.Errorf("end %v, want p_init/2⁹", p)
	}
}
