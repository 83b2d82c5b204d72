// The whole public API of polyhead.
#pragma once

#include "polyhead/attention.h"
#include "polyhead/block_map.h"
#include "polyhead/dtype.h"
#include "polyhead/error.h"
#include "polyhead/mask.h"
#include "polyhead/npy.h"
#include "polyhead/problem.h"
#include "polyhead/tensor.h"
