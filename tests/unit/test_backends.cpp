// The differential suite (differential_*.cpp) instantiated for every fast host backend. The
// reference is the oracle, so it is not compared with itself; tests/cuda instantiates "cuda".
#include "unit/differential.h"

namespace polyhead::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Host, Differential, ::testing::Values(std::string("cpu")), BackendName());

}  // namespace
}  // namespace polyhead::testing
