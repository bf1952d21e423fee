# Which NNG skc links (included by the top-level CMakeLists.txt).
#
# NNG 1.5.2 (Debian 12's) has bugs that let any peer wedge a node's
# connection teardown for good (docs/RELIABILITY.md L1, L2, L7).  The fixes
# are upstream in NNG 1.6.0 (L1, L2) and 1.10.0 (L7); the patch also fixes
# a TLS teardown hang (L8) that upstream has not fixed as of 1.11, maps
# large frames so that their memory goes back (RELIABILITY.md, section 5),
# and numbers the requests REP takes off each connection so that skc's
# server keeps their order (B11).  So:
#   - a system NNG >= 1.10.0 is used as it is;
#   - otherwise cmake/nng/build.sh builds Debian's NNG 1.5.2 source package
#     with skc's patch (cmake/nng/nng-1.5.2-skc.patch), static and with its
#     symbols hidden inside libskc, into ${CMAKE_BINARY_DIR}/nng;
#   - SKC_SYSTEM_NNG=ON forces the system NNG, whatever its version.
# Either way the result is the target nng::nng.

option(SKC_SYSTEM_NNG
  "Link the system NNG even when it lacks the fixes skc needs" OFF)
set(SKC_NNG_FIXED_VERSION 1.10.0)

set(_skc_sys_nng_version "")
# Looked up afresh at every configure: a cached path outlives a removed
# libnng-dev.
unset(SKC_SYSTEM_NNG_INCLUDE CACHE)
find_path(SKC_SYSTEM_NNG_INCLUDE nng/nng.h)
if(SKC_SYSTEM_NNG_INCLUDE AND EXISTS "${SKC_SYSTEM_NNG_INCLUDE}/nng/nng.h")
  file(STRINGS "${SKC_SYSTEM_NNG_INCLUDE}/nng/nng.h" _v
       REGEX "^#define NNG_(MAJOR|MINOR|PATCH)_VERSION [0-9]+")
  foreach(_l IN LISTS _v)
    string(REGEX MATCH "NNG_(MAJOR|MINOR|PATCH)_VERSION ([0-9]+)" _m "${_l}")
    set(_nng_${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endforeach()
  set(_skc_sys_nng_version "${_nng_MAJOR}.${_nng_MINOR}.${_nng_PATCH}")
endif()

if(_skc_sys_nng_version AND
   _skc_sys_nng_version VERSION_GREATER_EQUAL SKC_NNG_FIXED_VERSION)
  find_package(nng ${SKC_NNG_FIXED_VERSION} CONFIG REQUIRED)
  message(WARNING "skc: building against the system NNG "
    "${_skc_sys_nng_version}, without skc's patch: L8 (a TLS teardown "
    "hang) is open, and calls in flight on one connection may be handled "
    "out of order (docs/RELIABILITY.md B11; test skc.api_callorder fails).")
  set(SKC_NNG_DESC "system NNG ${_skc_sys_nng_version} (unpatched: L8, B11 open)")
elseif(SKC_SYSTEM_NNG)
  find_package(nng 1.5 CONFIG REQUIRED)
  message(WARNING "skc: building against the system NNG ${nng_VERSION}, "
    "which lacks upstream's close fixes: a peer can wedge this node's "
    "connection teardown for good (docs/RELIABILITY.md L1, L2, L7); "
    "and calls in flight on one connection may be handled out of order "
    "(B11; test skc.api_callorder fails).")
  set(SKC_NNG_DESC "system NNG ${nng_VERSION} (unpatched: L1 open)")
else()
  set(_dir ${CMAKE_BINARY_DIR}/nng)
  set(_inputs ${PROJECT_SOURCE_DIR}/cmake/nng/build.sh
              ${PROJECT_SOURCE_DIR}/cmake/nng/nng-1.5.2-skc.patch)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_inputs})
  set(_stamp_text "")
  foreach(_f IN LISTS _inputs)
    file(SHA256 ${_f} _h)
    string(APPEND _stamp_text "${_h}\n")
  endforeach()
  set(_old_stamp "")
  if(EXISTS ${_dir}/stamp AND EXISTS ${_dir}/prefix/lib/libnng.a)
    file(READ ${_dir}/stamp _old_stamp)
  endif()
  if(NOT _old_stamp STREQUAL _stamp_text)
    message(STATUS "skc: building NNG 1.5.2 with skc's patch "
      "(the system NNG is not >= ${SKC_NNG_FIXED_VERSION})")
    file(REMOVE ${_dir}/stamp)
    execute_process(
      COMMAND sh ${PROJECT_SOURCE_DIR}/cmake/nng/build.sh
              ${_dir}/work ${_dir}/prefix
      RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "skc: could not build the patched NNG (see the "
        "lines above).  Configure with -DSKC_SYSTEM_NNG=ON to build against "
        "the system NNG anyway (then L1 is open).")
    endif()
    file(WRITE ${_dir}/stamp "${_stamp_text}")
  endif()
  find_package(nng 1.5.2 EXACT CONFIG REQUIRED
    PATHS ${_dir}/prefix NO_DEFAULT_PATH)
  set(SKC_NNG_DESC "NNG 1.5.2 + skc's patch, static, built in ${_dir}")
endif()
message(STATUS "skc: NNG: ${SKC_NNG_DESC}")
