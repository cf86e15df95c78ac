// PolicyCompiler
