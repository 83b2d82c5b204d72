// The text grammar of every mask kind: round trips and one-line errors naming the bad field.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "masks/mask_oracles.h"

namespace polyhead::masktest {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("polyhead_masktest_" + name)).string();
}

TEST(MaskGrammar, RoundTripsEveryStaticKind) {
  for (const char* text :
       {"none", "causal", "causal:topleft", "window:128,0", "window:16,4,topleft",
        "window:1024,0,sink=4", "na:grid=16x16,kernel=5x5,dilation=1x1,stride=1x1,causal=0x0",
        "na:grid=8x6x4,kernel=3x2x3,dilation=2x1x1,stride=1x2x3,causal=1x0x0",
        "s2:block=64,local=4,vstride=8,offset=1,dense_heads=2",
        "s2:block=16,local=2,vstride=4,offset=0,dense_heads=0,homo=1",
        "heads:causal|window:8,0,sink=2|none", "longheads:chunk=256,k=16",
        "dhsa:chunk=64,k=8,recent=64"}) {
    const MaskSpec spec = MaskSpec::parse(text);
    EXPECT_EQ(MaskSpec::parse(spec.to_string()), spec) << text << " -> " << spec.to_string();
  }
  // Short forms: optional fields default, a single value broadcasts over the grid.
  EXPECT_EQ(MaskSpec::parse("na:grid=16x16,kernel=5").to_string(),
            "na:grid=16x16,kernel=5x5,dilation=1x1,stride=1x1,causal=0x0");
  EXPECT_EQ(MaskSpec::parse("s2:vstride=8").to_string(),
            "s2:block=64,local=4,vstride=8,offset=0,dense_heads=0");
}

TEST(MaskGrammar, LoadsBlockMasksAndScoresFromNpyFiles) {
  std::vector<uint8_t> bits = {1, 0, 1,
                               1, 0, 1};  // [1, 2, 3]: query blocks of 32, key blocks of 16
  const std::string blocks = temp_path("blocks.npy");
  save_npy(blocks, TensorView::contiguous(bits.data(), DType::u8, {1, 2, 3}));
  const MaskSpec b = MaskSpec::parse("blocks:" + blocks + ",bq=32,bk=16");
  ASSERT_NE(b.get_if<BlockMask>(), nullptr);
  EXPECT_EQ(b.get_if<BlockMask>()->block_q, 32);
  EXPECT_EQ(b.to_string(), "blocks:" + blocks + ",bq=32,bk=16");
  const BlockMap map = BlockMap::compile(b, {64, 48, 1, 1}, {16, 16});
  EXPECT_TRUE(map.allowed(0, 0, 0));
  EXPECT_FALSE(map.allowed(0, 0, 16));
  EXPECT_TRUE(map.allowed(0, 40, 32));   // block (1, 2)
  EXPECT_FALSE(map.allowed(0, 40, 20));  // block (1, 1)

  std::vector<float> scores(2 * 10, 0.5f);
  const std::string sfile = temp_path("scores.npy");
  save_npy(sfile, TensorView::contiguous(scores.data(), DType::f32, {2, 10}));
  const MaskSpec t = MaskSpec::parse("topk:k=4,window=8,scores=" + sfile);
  ASSERT_NE(t.get_if<TopKMask>(), nullptr);
  EXPECT_EQ(t.get_if<TopKMask>()->scores.view.shape[1], 10);
  EXPECT_TRUE(t.is_dynamic());
  std::remove(blocks.c_str());
  std::remove(sfile.c_str());
}

void expect_error(const std::string& text, const std::string& field) {
  try {
    MaskSpec::parse(text);
    ADD_FAILURE() << "no error for '" << text << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(field), std::string::npos) << text << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
  }
}

TEST(MaskGrammar, MalformedSpecsNameTheBadField) {
  expect_error("bogus:1", "unknown kind 'bogus'");
  expect_error("window:a,3", "LEFT");
  expect_error("window:3", "LEFT,RIGHT");
  expect_error("window:3,-2", "RIGHT");
  expect_error("window:3,0,sink=x", "sink");
  expect_error("window:3,0,flip=1", "flip");
  expect_error("na:kernel=3", "grid");
  expect_error("na:grid=8x8", "kernel");
  expect_error("na:grid=8x8,kernel=3x3x3", "kernel");
  expect_error("na:grid=8x8,kernel=3,causal=2", "causal");
  expect_error("s2:block=0", "block");
  expect_error("s2:vstride=4,local=x", "local");
  expect_error("blocks:bq=64", "FILE");
  expect_error("blocks:/nonexistent/file.npy,bq=64,bk=64", "cannot open");
  expect_error("longheads:chunk=256,k=2", "k");
  expect_error("dhsa:chunk=0", "chunk");
  expect_error("topk:k=4,window=8", "scores");
  expect_error("heads:causal|longheads:chunk=8,k=4", "per head");
  expect_error("causal:sideways", "sideways");
}

}  // namespace
}  // namespace polyhead::masktest
