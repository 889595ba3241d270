-- The registered functions and modules, with their flags: writers, file
-- readers and source runners are direct-only; model readers are not
-- deterministic; pure image functions are deterministic and innocuous.
.headers on
SELECT name, narg,
       (flags & 0x800) != 0 AS deterministic,
       (flags & 0x80000) != 0 AS directonly,
       (flags & 0x200000) != 0 AS innocuous
  FROM pragma_function_list WHERE name LIKE 'cnn\_%' ESCAPE '\' ORDER BY name, narg;
SELECT name FROM pragma_module_list WHERE name LIKE 'cnn\_%' ESCAPE '\' ORDER BY name;
SELECT cnn_version() = '0.1.0' AS version_ok;
SELECT cnn_debug() LIKE 'version=0.1.0%' AS debug_ok;
-- A registration that fails names the function: loading again while one of
-- the extension's functions runs cannot replace it.
.headers off
SELECT cnn_version(), load_extension('@SO@');
