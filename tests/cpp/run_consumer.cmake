# Configures and builds examples/cpp_consumer (main.cpp and ../cpp_train.cpp) against an
# installed rldt, runs the consumer, then trains two short iterations with cpp_train.
# -DSRC=<example dir> -DBIN=<build dir> -DPREFIX=<install prefix> -DCONFIG=<run config yaml>
foreach(step IN ITEMS configure build run train)
  if(step STREQUAL "configure")
    set(cmd ${CMAKE_COMMAND} -S ${SRC} -B ${BIN} -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${PREFIX})
  elseif(step STREQUAL "build")
    set(cmd ${CMAKE_COMMAND} --build ${BIN})
  elseif(step STREQUAL "run")
    set(cmd ${BIN}/rldt_consumer)
  else()
    file(REMOVE ${BIN}/cpp_train_policy.pt)
    set(cmd ${BIN}/rldt_cpp_train ${CONFIG} ${BIN}/cpp_train_policy.pt n_train_itr=2 n_envs=4 n_steps=10
            q_update_steps=8 q_repeat=2 policy_update_steps=2 policy.mlp_dims=[16,16,16])
  endif()
  execute_process(COMMAND ${cmd} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "find_package(rldt) consumer: ${step} failed (${rc})")
  endif()
endforeach()
if(NOT EXISTS ${BIN}/cpp_train_policy.pt)
  message(FATAL_ERROR "cpp_train did not write ${BIN}/cpp_train_policy.pt")
endif()
