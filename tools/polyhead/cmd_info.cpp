// polyhead info: version, backends, CPU and build facts.
#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "polyhead/attention.h"
#include "system.h"

namespace polyhead::cli {
namespace {

constexpr const char* kHelp = R"(usage: polyhead info

Prints the library version, every backend with its availability and description (SIMD target
and threads of the cpu backend, GPUs of the cuda backend), the CPU model and core count, the
default thread count, and whether OpenBLAS (the bench ceiling) is in this build.
)";

}  // namespace

int cmd_info(Words words) {
  const Args args = Args::parse(words, {});
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  std::printf("polyhead %s\n\nbackends:\n", version().c_str());
  for (const BackendInfo& b : backends()) {
    std::printf("  %-10s %-12s %s\n", b.name.c_str(), b.available ? "available" : "unavailable",
                b.description.c_str());
  }
  const CpuInfo cpu = cpu_info();
  std::printf("\ncpu:\n  model      %s\n", cpu.model.c_str());
  std::printf("  cores      %d logical online, %d usable by this process", cpu.logical_cpus,
              cpu.usable_cpus);
  if (cpu.physical_cores > 0) std::printf(", %d physical", cpu.physical_cores);
  std::printf("\n  threads    %d (OpenMP default; OMP_NUM_THREADS or --threads change it)\n",
              default_threads());
  const std::string blas = have_openblas() ? "yes (" + openblas_config() + ")" : "no";
  std::printf("\nbuild:\n  openblas   %s\n", blas.c_str());
  return 0;
}

}  // namespace polyhead::cli
