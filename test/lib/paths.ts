/**
 * Where things are: the repository root (found from this file, never
 * hard-coded), the fixture sources, and the names the tests use.
 */
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** test/lib/ of the checkout. */
export const libDir = dirname(fileURLToPath(import.meta.url))
/** The checkout's root directory (holds package.json). */
export const repoRoot = resolve(libDir, '..', '..')
/** test/fixtures/ of the checkout (C sources and helper scripts). */
export const fixturesSrc = resolve(repoRoot, 'test', 'fixtures')

/** The unprivileged user that the rules name. */
export const USER = 'stxtest'
/** A second unprivileged user that no rule names. */
export const OTHER_USER = 'stxtest2'
/** A supplementary group of USER, to check that groups pass through. */
export const SUPP_GROUP = 'stxtestgrp'
/** The broker's exec group (real gid of elevated programs). */
export const EXEC_GROUP = 'stx-elevate'

/** A clean PATH for everything the tests run. */
export const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** The system python3, which an unprivileged user can run (not a pyenv shim). */
export const PYTHON3 = '/usr/bin/python3'
