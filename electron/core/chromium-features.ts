// Chromium features the desktop app turns off (a plain constant, so that the benchmarks can
// run Debian's Chromium the way the app runs its own).
//
// DeferRendererTasksAfterInput: after a key press Chromium holds back network tasks until the
// next frame, which delays a console's echo by up to a frame (measured: page median 11.8 ms
// with it, 8.6 ms without, on a guest whose own echo takes about 6.5 ms).
export const CHROMIUM_FEATURES_OFF = ['DeferRendererTasksAfterInput'];
