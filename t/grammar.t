#!/usr/bin/perl

# The grammar, the path parser, the Accept normaliser and the challenge
# and token parsers on their own, without nginx: table tests
# and a bounded fuzz loop, built with AddressSanitizer and UBSan where the
# compiler has them.  The C program prints the TAP.

use strict;
use warnings;
use lib 't/lib';
use RegistryTest;

my $src = "$ROOT/ngx_registry_module";
my $ngx = "$ROOT/build/nginx";
my $bin = test_dir() . '/grammar_test';
my @inc = map { "-I$ngx/$_" }
          qw(src/core src/event src/event/modules src/os/unix objs);
my @cc = ('cc', '-g', '-O1', '-Wall', '-Werror', @inc, "-I$src",
          "$ROOT/t/unit/grammar_test.c", "$src/ngx_http_registry_validate.c",
          "$src/ngx_http_registry_route.c", "$src/ngx_http_registry_cache.c",
          "$src/ngx_http_registry_challenge.c",
          "$src/ngx_http_registry_json.c",
          '-o', $bin);

my $out = run_out(@cc[0 .. 4], '-fsanitize=address,undefined',
                  '-fno-sanitize-recover=all', @cc[5 .. $#cc]);
if (!$?) {
    print "# built with -fsanitize=address,undefined\n";
} else {
    # no sanitizer runtime here: still run the tests
    print "# built without sanitizers\n";
    $out = run_out(@cc);
    if ($?) {
        print "1..1\nnot ok 1 - grammar_test builds\n";
        print "# $_\n" for split /\n/, $out;
        exit 1;
    }
}

exec $bin, $ENV{FUZZ_ITERATIONS} // 200000;
