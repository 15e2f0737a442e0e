# Runs a PyTorch reference script with every tensor it creates on another device, so that the CPU
# references (../shared/bench/torch_reference.py) measure the same model on a GPU as they are.
# Usage: python on_device.py cuda[:N] script.py [script args...]   (torch >= 2.0: set_default_device)
# The scripts end each step with loss.item(), which waits for the GPU: their timings stay correct.
import runpy, sys, torch

device, script = sys.argv[1], sys.argv[2]
torch.set_default_device(device)
sys.argv = [script] + sys.argv[3:]
runpy.run_path(script, run_name="__main__")
