// A check shared by the C++ tests: bad input raises ArgumentError naming what was wrong.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "rldt/util/check.hpp"

// Expects fn() to throw rldt::ArgumentError whose message contains `needle`.
template <class Fn>
void expect_argument_error(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no ArgumentError; expected one naming '" << needle << "'";
  } catch (const rldt::ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}
