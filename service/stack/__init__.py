"""`docadapt stack`: the deployment's topology as separate processes on this machine
(processes.Stack) and a user's walk through it with a worker and a vLLM replica killed on the way
(walk.Walk). tests/e2e/test_stack.py runs the same."""
