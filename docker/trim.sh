#!/bin/sh
# trim.sh: shrink the virtualenv /opt/venv after install-deps.sh, keeping everything a conversion
# imports or loads. Dockerfile only (a builder stage with binutils; the images copy the result).
# Each removal below was checked by converting the example models in the image it ends up in.
set -eu
cd "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"

# Test suites. Packages import their `tests` only from their own test runners (h5py.run_tests,
# mpmath.runtests); tf2onnx installs its test suite as a top-level `tests` package. torch/test and
# torch/bin/test_*, *Test are C++ test executables. onnx/backend/test/data holds the models of
# ONNX's backend conformance tests. pandas, scipy, sympy, numpy, sklearn: about 130 MB in all.
find . -type d -name tests -prune -exec rm -rf {} +
rm -rf torch/test torch/bin/test_* torch/bin/*Test onnx/backend/test/data

# C++ headers, for building extensions against torch (torch.utils.cpp_extension, inductor's C++
# backend) and TensorFlow (tf.sysconfig.get_include): the images have no compiler to use them.
# tensorflow/include alone is 290 MB.
rm -rf torch/include tensorflow/include

# Symbol tables. torch's and TensorFlow's shared libraries ship unstripped (about 200 MB of
# .symtab/.strtab in libtensorflow_cc.so.2, 90 MB in libtorch_cpu.so). --strip-unneeded keeps the
# dynamic symbol table that the loader, dlopen/dlsym and Python's extension import use; what goes
# is what a debugger or a symbolised C++ backtrace would read. Other packages gain little (about
# 15 MB) and their libraries were rewritten by auditwheel's patchelf, which strip can break: left as
# they are.
for dir in torch tensorflow; do
  if [ -d "$dir" ]; then
    find "$dir" -type f \( -name '*.so' -o -name '*.so.*' \) -exec strip --strip-unneeded {} +
  fi
done
