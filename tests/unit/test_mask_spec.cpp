// MaskSpec's text form: round trips, canonical spellings, and malformed specs (each an Error
// naming the bad field).
#include <string>
#include <vector>

#include "support/testing.h"

namespace polyhead {
namespace {

TEST(MaskSpec, CanonicalFormsRoundTrip) {
  for (const char* text : {"none", "causal", "causal:topleft", "window:3,5", "window:-1,7",
                           "window:7,-1", "window:0,0", "window:-1,-1", "window:12,4,topleft",
                           "window:1000000,0", "window:8,0,sink=4", "window:8,0,sink=4,topleft"}) {
    const MaskSpec spec = MaskSpec::parse(text);
    EXPECT_EQ(spec.to_string(), text);
    EXPECT_EQ(MaskSpec::parse(spec.to_string()), spec) << text;
  }
}

TEST(MaskSpec, AliasesParseToTheCanonicalSpec) {
  struct Row {
    const char* text;
    MaskSpec want;
  };
  for (const Row& r : {
           Row{"full", MaskSpec::none()},
           Row{"causal:bottomright", MaskSpec::causal()},
           Row{"window:-1,0", MaskSpec::causal()},
           Row{"window:-1,0,topleft", MaskSpec::causal(Alignment::top_left)},
           Row{"window:3,5,bottomright", MaskSpec::window(3, 5)},
       }) {
    EXPECT_EQ(MaskSpec::parse(r.text), r.want) << r.text;
  }
  EXPECT_EQ(MaskSpec::parse("causal").to_string(), "causal");
  EXPECT_EQ(MaskSpec::parse("window:-1,0,topleft").to_string(), "causal:topleft");
}

TEST(MaskSpec, FieldsOfParsedWindows) {
  const MaskSpec spec = MaskSpec::parse("window:12,4,topleft");
  const auto* w = spec.get_if<WindowMask>();
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->left, 12);
  EXPECT_EQ(w->right, 4);
  EXPECT_EQ(w->align, Alignment::top_left);
  EXPECT_EQ(spec.alignment(), Alignment::top_left);
  EXPECT_TRUE(MaskSpec::parse("none").is_none());
  EXPECT_EQ(MaskSpec::none().alignment(), Alignment::bottom_right);
  EXPECT_EQ(MaskSpec::causal().alignment(), Alignment::bottom_right);
}

TEST(MaskSpec, RandomWindowsRoundTrip) {
  testing::Rng rng(11);
  for (int n = 0; n < 2000; ++n) {
    const int64_t left = rng.uniform_int(-1, 300), right = rng.uniform_int(-1, 300);
    const Alignment align = rng.chance(0.5) ? Alignment::top_left : Alignment::bottom_right;
    const MaskSpec spec = MaskSpec::window(left, right, align);
    ASSERT_EQ(MaskSpec::parse(spec.to_string()), spec) << spec.to_string();
  }
}

// Each malformed spec throws Error whose message names the spec and the bad field.
TEST(MaskSpec, MalformedSpecsNameTheBadField) {
  struct Row {
    const char* text;
    const char* field;
  };
  for (const Row& r : {
           Row{"", "unknown kind ''"},
           Row{"causl", "unknown kind 'causl'"},
           Row{"Causal", "unknown kind 'Causal'"},
           Row{"causl:1", "unknown kind 'causl'"},
           Row{"windows:1,2", "unknown kind 'windows'"},
           Row{"none:1", "none"},
           Row{"causal:left", "left"},
           Row{"causal:topleft,1", "topleft,1"},
           Row{"window", "arguments"},
           Row{"window:", "LEFT"},
           Row{"window:1", "LEFT"},
           Row{"window:1,2,topleft,3", "LEFT"},
           Row{"window:a,2", "LEFT"},
           Row{"window:1,b", "RIGHT"},
           Row{"window:1.5,2", "LEFT"},
           Row{"window: 1,2", "LEFT"},
           Row{"window:1,2x", "RIGHT"},
           Row{"window:-2,0", "LEFT"},
           Row{"window:0,-5", "RIGHT"},
           Row{"window:1,2,diagonal", "diagonal"},
           Row{"window:1,2,", "alignment"},
           Row{"window:99999999999999999999,0", "LEFT"},
           Row{"window:8,0,sink=-1", "sink"},
           Row{"window:8,0,sink=x", "sink"},
           Row{"window:8,0,width=3", "width"},
       }) {
    try {
      MaskSpec::parse(r.text);
      ADD_FAILURE() << "mask '" << r.text << "' parsed without an error";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(r.field), std::string::npos)
          << "mask '" << r.text << "': \"" << message << "\" does not name " << r.field;
      EXPECT_NE(message.find(std::string("'") + r.text + "'"), std::string::npos)
          << "mask '" << r.text << "': \"" << message << "\" does not quote the spec";
    }
  }
}

}  // namespace
}  // namespace polyhead
