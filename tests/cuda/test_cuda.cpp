// The differential suite on the cuda backend: inputs are copied to the GPU, outputs back, and
// compared with the fp64 reference exactly as for the host backends. Each test skips with the
// reason when no GPU is present or the backend does not support its cases yet.
#include "support/device.h"
#include "unit/differential.h"

namespace polyhead::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Gpu, Differential, ::testing::Values(std::string("cuda")), BackendName());

// The device helpers themselves: a round trip through GPU memory returns the same bytes.
TEST(CudaDevice, CopiesRoundTrip) {
  if (const std::string why = device::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  HostTensor t(DType::bf16, {3, 5, 7}, Layout{true, 2, 1});
  for (int64_t f = 0; f < t.numel(); ++f) t.set(f, double(f) * 0.5);
  device::Buffer b(t.storage_bytes());
  b.upload(t.storage());
  HostTensor back(DType::bf16, {3, 5, 7}, Layout{true, 2, 1});
  b.download(back.storage());
  EXPECT_TRUE(back.snapshot() == t.snapshot());
}

// supports() on device tensors answers without touching them, with a reason when it says no.
TEST(CudaDevice, SupportsExplainsRefusals) {
  if (const std::string why = device::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  Case c = small_case("cuda_supports", 0);
  Problem p = make_problem(c);
  device::Buffer q(p.q.storage_bytes()), k(p.k.storage_bytes()), v(p.v.storage_bytes()),
      o(p.o.storage_bytes()), lse(p.lse.storage_bytes());
  const Device dev{DeviceType::cuda, device::current_device()};
  AttentionProblem a = p.view();
  a.q = p.q.view_at(q.get(), dev);
  a.k = p.k.view_at(k.get(), dev);
  a.v = p.v.view_at(v.get(), dev);
  a.o = p.o.view_at(o.get(), dev);
  a.lse = p.lse.view_at(lse.get(), dev);
  const Status st = supports(a, "cuda");
  if (!st.ok) {
    EXPECT_FALSE(st.reason.empty());
  }
  EXPECT_FALSE(supports(a, "reference").ok) << "the reference runs on the host only";
}

}  // namespace
}  // namespace polyhead::testing
