"""PE-Rank's training: data (:mod:`.data`), losses (:mod:`.losses`), the loss module (:mod:`.model`), the
Trainer (:mod:`.trainer`), its arguments (:mod:`.arguments`) and the runner ``--family pe-rank`` (:mod:`.runner`)."""
