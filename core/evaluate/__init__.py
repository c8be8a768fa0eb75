"""How good a model is: scoring predictions (`metrics`, `reliability`), running a model over a
dataset (`evaluator`) and fitting its answers on the validation split (`calibrate`)."""
