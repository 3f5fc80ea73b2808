//! Element-wise loops compiled twice: for AVX-512 where the CPU has it,
//! and as built otherwise, with the same bits either way.

/// `wide! { pub fn name / plain(args) -> R { body } }` defines `plain`, the
/// body as written, and `name`, which runs that body compiled for AVX-512
/// when the CPU has it and as built (x86-64's SSE2) otherwise. Element-wise
/// loops then run 16 lanes wide instead of 4. The results are the same
/// bits either way (`plain` is there for the tests that check it): each
/// element's arithmetic is unchanged, Rust never fuses a multiply and an
/// add on its own, and it never reorders a float sum, so sequential sums
/// stay sequential.
macro_rules! wide {
    ($(#[$m:meta])* $vis:vis fn $name:ident / $plain:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn $plain($($arg: $ty),*) $(-> $ret)? $body

        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $plain($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the CPU has every feature `avx512` was
                    // compiled for (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
            }
            $plain($($arg),*)
        }
    };
}
pub(crate) use wide;
