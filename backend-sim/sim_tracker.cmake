# The simulated tracker and the PRNG it shares with hekate-sim: a library of their own that needs only the core (no
# SimGrid), linked by hekate-sim and by tests/unit/sim/test_tracker_sim.c. Included by backend-sim/CMakeLists.txt, and
# by tests/CMakeLists.txt when SimGrid is not there (so that the unit test still builds).
add_library(hekate_sim_tracker STATIC ${CMAKE_CURRENT_LIST_DIR}/sim_tracker.c ${CMAKE_CURRENT_LIST_DIR}/prng.c)
target_include_directories(hekate_sim_tracker PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(hekate_sim_tracker PUBLIC hekate_core m)
