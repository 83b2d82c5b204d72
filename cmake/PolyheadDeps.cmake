# Third-party dependencies. Each optional one degrades to a documented fallback, so that a
# machine without it (the GPU machine ships none of them) still builds and tests the rest.
#
#   OpenMP      CPU threads (required for a fast cpu backend; without it the cpu backend runs
#               on one thread)
#   Highway     SIMD with runtime dispatch for the cpu backend (without it the cpu backend is left
#               out of the build; the reference backend and the cuda backend remain)
#   OpenBLAS    sgemm ceiling in `polyhead bench` (fallback: the ceiling is reported as n/a)
#   GoogleTest  tests (installed package, or the sources in POLYHEAD_GTEST_SOURCE)

find_package(OpenMP COMPONENTS CXX)

set(POLYHEAD_HIGHWAY AUTO CACHE STRING "Use Google Highway for CPU SIMD (ON, OFF, AUTO)")
set(POLYHEAD_HAVE_HIGHWAY OFF)
if(NOT POLYHEAD_HIGHWAY STREQUAL "OFF")
  find_package(hwy CONFIG QUIET)
  if(TARGET hwy::hwy)
    set(POLYHEAD_HAVE_HIGHWAY ON)
  elseif(POLYHEAD_HIGHWAY STREQUAL "ON")
    message(FATAL_ERROR "POLYHEAD_HIGHWAY=ON but Highway was not found (apt install libhwy-dev)")
  endif()
endif()

set(POLYHEAD_HAVE_OPENBLAS OFF)
find_path(POLYHEAD_CBLAS_INCLUDE cblas.h
  PATH_SUFFIXES x86_64-linux-gnu/openblas-openmp openblas-openmp openblas
  x86_64-linux-gnu/openblas-pthread aarch64-linux-gnu/openblas-openmp)
find_library(POLYHEAD_OPENBLAS_LIB NAMES openblas
  PATH_SUFFIXES x86_64-linux-gnu/openblas-openmp openblas-openmp x86_64-linux-gnu
  aarch64-linux-gnu/openblas-openmp)
if(POLYHEAD_CBLAS_INCLUDE AND POLYHEAD_OPENBLAS_LIB)
  set(POLYHEAD_HAVE_OPENBLAS ON)
  add_library(polyhead_openblas INTERFACE)
  target_include_directories(polyhead_openblas SYSTEM INTERFACE ${POLYHEAD_CBLAS_INCLUDE})
  target_link_libraries(polyhead_openblas INTERFACE ${POLYHEAD_OPENBLAS_LIB})
endif()

message(STATUS "polyhead: OpenMP=${OpenMP_CXX_FOUND} Highway=${POLYHEAD_HAVE_HIGHWAY} "
               "OpenBLAS=${POLYHEAD_HAVE_OPENBLAS}")
