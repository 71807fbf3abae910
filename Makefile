# Entry points Fivetran's connector build expects (docs/fivetran.md); development uses
# scripts/test.sh and scripts/demo.sh.
.PHONY: build_dependencies build_connector build test demo clean

build_dependencies:
	scripts/install-deps.sh

# One executable in build/Release, as Fivetran's C/C++ build rules ask.
build_connector:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDC_TESTS=OFF
	cmake --build build -j$$(nproc) --target docdb-connector
	mkdir -p build/Release
	cp build/src/docdb-connector build/Release/docdb-connector

build: build_connector

test:
	scripts/test.sh

demo:
	scripts/demo.sh

clean:
	rm -rf build build-asan
