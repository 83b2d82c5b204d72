// The GPU's SM clock and board power while a benchmark case runs, sampled through NVML on a
// host thread, so that a change in speed can be told apart from a change in clock (under a
// power cap the H200 lowers its SM clock as the tensor cores get busier).
//
// NVML is the driver's library (libnvidia-ml.so.1), loaded at run time: the benchmark builds
// without it and reports nothing when it is missing. Samples cover everything on the GPU
// during start() .. stop(), including the L2 flush between timed calls.
#pragma once

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace polyhead::bench {

struct GpuSamples {
  int count = 0;      // 0: no NVML, nothing below is meaningful
  double sm_mhz = 0;  // mean SM clock
  int sm_mhz_min = 0, sm_mhz_max = 0;
  double watts = 0;         // mean board power
  double power_capped = 0;  // share of samples whose clock was held down by the power cap
  double thermal = 0;       // ... by a thermal slowdown (software or hardware)
};

class GpuSampler {
 public:
  // pci_bus_id: cudaDeviceGetPCIBusId's string for the device that runs the cases.
  explicit GpuSampler(const std::string& pci_bus_id) {
    lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib_ == nullptr) return;
    auto sym = [&](const char* name) { return dlsym(lib_, name); };
    auto init = reinterpret_cast<int (*)()>(sym("nvmlInit_v2"));
    auto by_bus =
        reinterpret_cast<int (*)(const char*, void**)>(sym("nvmlDeviceGetHandleByPciBusId_v2"));
    clock_ = reinterpret_cast<int (*)(void*, int, unsigned*)>(sym("nvmlDeviceGetClockInfo"));
    power_ = reinterpret_cast<int (*)(void*, unsigned*)>(sym("nvmlDeviceGetPowerUsage"));
    reasons_ = reinterpret_cast<int (*)(void*, unsigned long long*)>(
        sym("nvmlDeviceGetCurrentClocksEventReasons"));
    if (reasons_ == nullptr) {  // the name before NVML 12.2
      reasons_ = reinterpret_cast<int (*)(void*, unsigned long long*)>(
          sym("nvmlDeviceGetCurrentClocksThrottleReasons"));
    }
    if (init == nullptr || by_bus == nullptr || clock_ == nullptr || power_ == nullptr ||
        init() != 0 || by_bus(pci_bus_id.c_str(), &device_) != 0) {
      device_ = nullptr;
    }
  }
  ~GpuSampler() {
    stop();
    if (lib_ != nullptr) {
      if (device_ != nullptr) {
        if (auto shutdown = reinterpret_cast<int (*)()>(dlsym(lib_, "nvmlShutdown"))) shutdown();
      }
      dlclose(lib_);
    }
  }
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  bool available() const { return device_ != nullptr; }

  // Samples every `period` from now until stop().
  void start(std::chrono::microseconds period = std::chrono::microseconds(500)) {
    if (!available() || thread_.joinable()) return;
    samples_.clear();
    running_ = true;
    thread_ = std::thread([this, period] {
      while (running_) {
        take();
        std::this_thread::sleep_for(period);
      }
    });
  }

  GpuSamples stop() {
    GpuSamples s;
    if (!thread_.joinable()) return s;
    running_ = false;
    thread_.join();
    take();  // at least one sample, however short the case
    for (const Sample& x : samples_) {
      s.sm_mhz += x.mhz;
      s.watts += x.milliwatts * 1e-3;
      s.sm_mhz_min = s.count == 0 ? int(x.mhz) : std::min(s.sm_mhz_min, int(x.mhz));
      s.sm_mhz_max = std::max(s.sm_mhz_max, int(x.mhz));
      s.power_capped += (x.reasons & kPowerCap) != 0;
      s.thermal += (x.reasons & kThermal) != 0;
      ++s.count;
    }
    if (s.count > 0) {
      s.sm_mhz /= s.count, s.watts /= s.count, s.power_capped /= s.count, s.thermal /= s.count;
    }
    return s;
  }

 private:
  // nvmlClocksEventReasons bits: SwPowerCap; SwThermalSlowdown | HwThermalSlowdown.
  static constexpr unsigned long long kPowerCap = 0x4ull, kThermal = 0x20ull | 0x40ull;
  static constexpr int kClockSm = 1;  // NVML_CLOCK_SM
  struct Sample {
    unsigned mhz = 0, milliwatts = 0;
    unsigned long long reasons = 0;
  };

  void take() {
    Sample x;
    if (clock_(device_, kClockSm, &x.mhz) != 0 || power_(device_, &x.milliwatts) != 0) return;
    if (reasons_ != nullptr && reasons_(device_, &x.reasons) != 0) x.reasons = 0;
    samples_.push_back(x);
  }

  void* lib_ = nullptr;
  void* device_ = nullptr;
  int (*clock_)(void*, int, unsigned*) = nullptr;
  int (*power_)(void*, unsigned*) = nullptr;
  int (*reasons_)(void*, unsigned long long*) = nullptr;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::vector<Sample> samples_;  // written by the sampling thread until stop() joins it
};

}  // namespace polyhead::bench
